package settings

import (
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Registry holds the drivers of one kind of device — scanners, displays, a
// vending machine's adapter, fiscal providers — by name. A driver registers
// the starting value of its own settings type, whose pointer declares the
// keys (Schema); Decode reads one devices.yaml entry with it. Like periph's
// driver registry, it hands out settings that open a device, never open
// handles.
type Registry[V any] struct {
	kind  string // "scanner", "display": for messages
	key   string // the key that names the driver: "driver", "provider"
	named bool

	mu      sync.RWMutex
	drivers map[string]*registered[V]
}

type registered[V any] struct {
	keys   []string
	decode func(d *Decoder, n *Node, sec *Section, unknown func(Key)) V
}

// Entry is one entry decoded through a Registry: its driver, its name and
// the driver's settings.
type Entry[V any] struct {
	Name     string // the entry's name key; the driver's name when it has none
	Driver   string
	Settings V
	Line     int // where the entry starts in its file; 0 when made in code
}

// NewRegistry returns an empty registry of one kind. key is the key that
// names the driver in an entry ("driver"); with named, an entry may also
// have a "name" (a device name, see Name) that defaults to the driver's.
func NewRegistry[V any](kind, key string, named bool) *Registry[V] {
	return &Registry[V]{kind: kind, key: key, named: named, drivers: map[string]*registered[V]{}}
}

// Register makes a driver available under name. defaults is the value its
// settings start from, and the keys are those *T declares; T must be a V
// (the kind's interface, such as scanner.Settings). Drivers call it from
// init and pin T with a `var _ V = T{}` line, so a mismatch fails to
// compile; an empty or repeated name panics, because that is a programming
// error found at start-up.
func Register[V, T any, PT interface {
	*T
	Schema
}](r *Registry[V], name string, defaults T) {
	if _, ok := any(defaults).(V); !ok {
		panic(fmt.Sprintf("settings: %s driver %s: %T is not a %T", r.kind, name, defaults, (*V)(nil)))
	}
	if name == "" || name == "name" || name == r.key {
		panic(fmt.Sprintf("settings: %s driver with the name %q", r.kind, name))
	}
	fields := PT(new(T)).Fields()
	for _, f := range fields {
		if f.Key == r.key || (r.named && f.Key == "name") {
			panic(fmt.Sprintf("settings: %s driver %s declares the key %q of the registry", r.kind, name, f.Key))
		}
	}
	d := &registered[V]{
		keys: keysOf(fields),
		decode: func(d *Decoder, n *Node, sec *Section, unknown func(Key)) V {
			t := defaults
			p := PT(&t)
			d.decodeMap(n, sec, p, p.Fields(), unknown)
			return any(t).(V)
		},
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.drivers[name]; dup {
		panic(fmt.Sprintf("settings: %s driver %s registered twice", r.kind, name))
	}
	r.drivers[name] = d
}

// Names returns the registered drivers, sorted.
func (r *Registry[V]) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.drivers))
	for n := range r.drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Keys returns the keys the named driver declares, in its order, and false
// when no such driver is registered.
func (r *Registry[V]) Keys(driver string) ([]string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.drivers[driver]
	if !ok {
		return nil, false
	}
	return slices.Clone(d.keys), true
}

// allKeys is every key any driver declares, plus the registry's own.
func (r *Registry[V]) allKeys() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	keys := []string{r.key}
	if r.named {
		keys = append(keys, "name")
	}
	for _, d := range r.drivers {
		for _, k := range d.keys {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// Decode reads one entry: the driver key, the name (for a named registry),
// then the driver's own keys and rules. A key that another driver has is
// reported as "not used by driver X", any other unknown key with a "did you
// mean". ok is false when the entry could not be read (not a mapping, no
// or an unknown driver); the problems are on d.
func (r *Registry[V]) Decode(d *Decoder, n *Node, path string) (e Entry[V], ok bool) {
	if n.Kind != MapNode {
		d.Errorf(n.Line, path, "want a mapping of keys, got %s", n.describe())
		return e, false
	}
	e.Line = n.Line
	names := r.Names()
	var drv *registered[V]
	if k, given := n.key(r.key); !given {
		d.Errorf(n.Line, join(path, r.key), "required: %s", orList(names))
	} else if enum(r.key, names, func(i int) { e.Driver = names[i] }).decode(d, k, join(path, k.Name)) {
		r.mu.RLock()
		drv = r.drivers[e.Driver]
		r.mu.RUnlock()
	}
	e.Name = e.Driver
	if k, given := n.key("name"); r.named && given {
		Name("name", &e.Name).decode(d, k, join(path, k.Name))
	}
	all := r.allKeys()
	unknown := func(k Key) {
		switch {
		case k.Name == r.key || (r.named && k.Name == "name"):
		case !slices.Contains(all, k.Name):
			d.unknown(k, join(path, k.Name), all)
		case drv != nil:
			d.Errorf(k.Line, join(path, k.Name), "not used by %s %s", r.key, e.Driver)
		}
	}
	if drv == nil {
		for _, k := range n.Keys {
			unknown(k) // the driver's keys cannot be judged without it
		}
		return e, false
	}
	sec := &Section{Path: path, Line: n.Line, Name: e.Name, Driver: e.Driver}
	e.Settings = drv.decode(d, n, sec, unknown)
	return e, true
}

// Many binds key to a list of entries, each read through r. Every list
// item gets an Entry, also one that could not be read (with zero Settings),
// so that dst[i] is the file's key[i].
func Many[V any](key string, r *Registry[V], dst *[]Entry[V]) Field {
	return List(key, func(d *Decoder, n *Node, path string) {
		e, _ := r.Decode(d, n, path)
		*dst = append(*dst, e)
	})
}

// One binds key to a single entry read through r (a section such as
// "vending:" with its driver key inside).
func One[V any](key string, r *Registry[V], dst *Entry[V]) Field {
	return Custom(key, func(d *Decoder, n *Node, path string) bool {
		if n.Kind == NullNode {
			return false
		}
		e, ok := r.Decode(d, n, path)
		if ok {
			*dst = e
		}
		return ok
	})
}
