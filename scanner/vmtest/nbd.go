package vmtest

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
)

// Disk is a block device that loses power the way a drive with a volatile
// write cache does. QEMU reaches it over NBD (a unix socket; the guest sees
// a virtio disk). A write is acknowledged at once but reaches the durable
// image (a file on the host) only with a flush or a FUA write; Cut drops
// the cache, keeping each 4 KiB piece of it with a probability the caller
// chooses, since a drive may have written any part of its cache back, in
// any order. After Cut every request fails with EIO until PowerOn.
//
// A raw -drive file cannot do this: QEMU writes the guest's requests into
// the host's page cache, which outlives a killed QEMU, so `kill -9` of QEMU
// loses only what the guest had not written to its disk yet, whatever the
// cache mode (writeback, unsafe, none, writethrough, directsync measured
// alike; unsafe differs only on a host crash). See cmd/powercut's -probe.
type Disk struct {
	f    *os.File
	size int64

	mu      sync.Mutex
	on      bool
	cache   []diskWrite // acknowledged, not yet durable, in order
	flushes int         // flushes since PowerOn
	// beforeFlush, when set, runs (without the lock) before each flush is
	// applied, with the flush's number since PowerOn; it may Cut, and the
	// flush then fails.
	beforeFlush func(n int)
}

type diskWrite struct {
	off  int64
	data []byte
}

// CutReport says what a power cut did to the cache.
type CutReport struct {
	Writes  int // writes in the cache
	Bytes   int // their bytes
	Kept    int // 4 KiB pieces that reached the image anyway
	Dropped int // pieces lost
}

func (r CutReport) String() string {
	return fmt.Sprintf("cache %d writes/%d KiB: %d pieces kept, %d lost", r.Writes, r.Bytes>>10, r.Kept, r.Dropped)
}

// OpenDisk serves the image at path (created sparse with size bytes when
// it does not exist yet), powered off.
func OpenDisk(path string, size int64) (*Disk, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("vmtest: disk: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("vmtest: disk: %w", err)
	}
	if fi.Size() == 0 {
		if err := f.Truncate(size); err != nil {
			f.Close()
			return nil, fmt.Errorf("vmtest: disk: %w", err)
		}
	} else {
		size = fi.Size()
	}
	return &Disk{f: f, size: size}, nil
}

// Close closes the image file.
func (d *Disk) Close() error { return d.f.Close() }

// PowerOn makes the disk answer again, with an empty cache.
func (d *Disk) PowerOn() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.on, d.cache, d.flushes = true, nil, 0
}

// BeforeFlush sets the hook run before each flush (nil: none).
func (d *Disk) BeforeFlush(fn func(n int)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.beforeFlush = fn
}

// Flushes is the number of flushes since PowerOn.
func (d *Disk) Flushes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flushes
}

// Cut cuts the power: every later request fails, and each 4 KiB piece of
// the cache reaches the image with probability keep (drawn from rng, in
// write order), the rest is lost. Cutting a disk that is off does nothing.
func (d *Disk) Cut(rng *rand.Rand, keep float64) CutReport {
	d.mu.Lock()
	defer d.mu.Unlock()
	var r CutReport
	if !d.on {
		return r
	}
	d.on = false
	for _, w := range d.cache {
		r.Writes++
		r.Bytes += len(w.data)
		for p := 0; p < len(w.data); {
			// Pieces follow the image's 4 KiB grid, as a drive's pages do.
			end := min(len(w.data), p+4096-int((w.off+int64(p))%4096))
			if rng.Float64() < keep {
				r.Kept++
				if _, err := d.f.WriteAt(w.data[p:end], w.off+int64(p)); err != nil {
					panic(fmt.Sprintf("vmtest: disk image write: %v", err)) // the host's own disk failed
				}
			} else {
				r.Dropped++
			}
			p = end
		}
	}
	d.cache = nil
	return r
}

// flushLocked makes the cache durable.
func (d *Disk) flushLocked() error {
	for _, w := range d.cache {
		if _, err := d.f.WriteAt(w.data, w.off); err != nil {
			return err
		}
	}
	d.cache = nil
	return nil
}

// readLocked reads from the image with the cached writes on top.
func (d *Disk) readLocked(b []byte, off int64) error {
	if _, err := d.f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	end := off + int64(len(b))
	for _, w := range d.cache {
		wend := w.off + int64(len(w.data))
		if wend <= off || w.off >= end {
			continue
		}
		lo, hi := max(off, w.off), min(end, wend)
		copy(b[lo-off:hi-off], w.data[lo-w.off:hi-w.off])
	}
	return nil
}

// NBD protocol constants (https://github.com/NetworkBlockDevice/nbd/blob/master/doc/proto.md),
// fixed newstyle negotiation and simple replies only.
const (
	nbdMagic        = 0x4e42444d41474943 // "NBDMAGIC"
	nbdOptMagic     = 0x49484156454f5054 // "IHAVEOPT"
	nbdRepMagic     = 0x0003e889045565a9
	nbdReqMagic     = 0x25609513
	nbdSimpleMagic  = 0x67446698
	nbdFlagFixed    = 1 << 0 // handshake: fixed newstyle
	nbdFlagNoZeroes = 1 << 1
	nbdOptExport    = 1
	nbdOptAbort     = 2
	nbdOptInfo      = 6
	nbdOptGo        = 7
	nbdRepAck       = 1
	nbdRepInfo      = 3
	nbdRepErrUnsup  = 1<<31 | 1
	nbdInfoExport   = 0
	nbdTxHasFlags   = 1 << 0 // transmission flags
	nbdTxSendFlush  = 1 << 2
	nbdTxSendFUA    = 1 << 3
	nbdCmdRead      = 0
	nbdCmdWrite     = 1
	nbdCmdDisc      = 2
	nbdCmdFlush     = 3
	nbdCmdFlagFUA   = 1 << 0
	nbdEIO          = 5
	nbdEINVAL       = 22
	nbdMaxRequest   = 32 << 20
)

// Serve answers NBD clients on ln, one connection at a time as QEMU makes
// them, until ctx ends.
func (d *Disk) Serve(ctx context.Context, ln net.Listener) error {
	go func() { <-ctx.Done(); ln.Close() }() // owner: Serve's ctx
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("vmtest: disk: %w", err)
		}
		wg.Add(1)
		go func() { // owner: Serve; ends when the client hangs up or ctx ends
			defer wg.Done()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			defer c.Close()
			_ = d.serveConn(c)
		}()
	}
}

func (d *Disk) serveConn(c net.Conn) error {
	r := bufio.NewReaderSize(c, 256<<10)
	w := bufio.NewWriterSize(c, 256<<10)
	if err := d.negotiate(r, w); err != nil {
		return err
	}
	var hdr [28]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		if binary.BigEndian.Uint32(hdr[0:]) != nbdReqMagic {
			return errors.New("vmtest: disk: bad request magic")
		}
		flags := binary.BigEndian.Uint16(hdr[4:])
		typ := binary.BigEndian.Uint16(hdr[6:])
		handle := hdr[8:16]
		off := int64(binary.BigEndian.Uint64(hdr[16:]))
		n := binary.BigEndian.Uint32(hdr[24:])
		var data []byte
		if typ == nbdCmdWrite {
			if n > nbdMaxRequest {
				return errors.New("vmtest: disk: write too large")
			}
			data = make([]byte, n)
			if _, err := io.ReadFull(r, data); err != nil {
				return err
			}
		}
		if typ == nbdCmdDisc {
			return nil
		}
		code, payload := d.do(typ, flags, off, n, data)
		var rep [16]byte
		binary.BigEndian.PutUint32(rep[0:], nbdSimpleMagic)
		binary.BigEndian.PutUint32(rep[4:], code)
		copy(rep[8:], handle)
		w.Write(rep[:])
		if code == 0 && payload != nil {
			w.Write(payload)
		}
		if r.Buffered() == 0 { // answer now unless more requests are already here
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// do performs one request and returns the NBD error code and read data.
func (d *Disk) do(typ, flags uint16, off int64, n uint32, data []byte) (uint32, []byte) {
	if typ != nbdCmdFlush && (off < 0 || off+int64(n) > d.size || n > nbdMaxRequest) {
		return nbdEINVAL, nil
	}
	if typ == nbdCmdFlush {
		d.mu.Lock()
		d.flushes++
		hook, no := d.beforeFlush, d.flushes
		d.mu.Unlock()
		if hook != nil {
			hook(no)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.on {
		return nbdEIO, nil
	}
	switch typ {
	case nbdCmdRead:
		b := make([]byte, n)
		if err := d.readLocked(b, off); err != nil {
			return nbdEIO, nil
		}
		return 0, b
	case nbdCmdWrite:
		d.cache = append(d.cache, diskWrite{off: off, data: data})
		if flags&nbdCmdFlagFUA != 0 {
			// Forced unit access: this write is durable when answered.
			// Flushing what came before too keeps older cached data from
			// landing over it later.
			if err := d.flushLocked(); err != nil {
				return nbdEIO, nil
			}
		}
		return 0, nil
	case nbdCmdFlush:
		if err := d.flushLocked(); err != nil {
			return nbdEIO, nil
		}
		return 0, nil
	}
	return nbdEINVAL, nil
}

// negotiate runs the fixed-newstyle handshake until the client picks the
// export (NBD_OPT_GO or NBD_OPT_EXPORT_NAME; the name is ignored).
func (d *Disk) negotiate(r *bufio.Reader, w *bufio.Writer) error {
	var b [18]byte
	binary.BigEndian.PutUint64(b[0:], nbdMagic)
	binary.BigEndian.PutUint64(b[8:], nbdOptMagic)
	binary.BigEndian.PutUint16(b[16:], nbdFlagFixed|nbdFlagNoZeroes)
	w.Write(b[:])
	if err := w.Flush(); err != nil {
		return err
	}
	var cf [4]byte
	if _, err := io.ReadFull(r, cf[:]); err != nil {
		return err
	}
	noZeroes := binary.BigEndian.Uint32(cf[:])&nbdFlagNoZeroes != 0
	const txFlags = nbdTxHasFlags | nbdTxSendFlush | nbdTxSendFUA
	reply := func(opt, typ uint32, data []byte) error {
		var h [20]byte
		binary.BigEndian.PutUint64(h[0:], nbdRepMagic)
		binary.BigEndian.PutUint32(h[8:], opt)
		binary.BigEndian.PutUint32(h[12:], typ)
		binary.BigEndian.PutUint32(h[16:], uint32(len(data)))
		w.Write(h[:])
		w.Write(data)
		return w.Flush()
	}
	for {
		var h [16]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return err
		}
		if binary.BigEndian.Uint64(h[0:]) != nbdOptMagic {
			return errors.New("vmtest: disk: bad option magic")
		}
		opt, n := binary.BigEndian.Uint32(h[8:]), binary.BigEndian.Uint32(h[12:])
		if n > 64<<10 {
			return errors.New("vmtest: disk: option too long")
		}
		if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
			return err
		}
		switch opt {
		case nbdOptExport:
			var e [10]byte
			binary.BigEndian.PutUint64(e[0:], uint64(d.size))
			binary.BigEndian.PutUint16(e[8:], txFlags)
			w.Write(e[:])
			if !noZeroes {
				w.Write(make([]byte, 124))
			}
			return w.Flush()
		case nbdOptInfo, nbdOptGo:
			var info [12]byte
			binary.BigEndian.PutUint16(info[0:], nbdInfoExport)
			binary.BigEndian.PutUint64(info[2:], uint64(d.size))
			binary.BigEndian.PutUint16(info[10:], txFlags)
			if err := reply(opt, nbdRepInfo, info[:]); err != nil {
				return err
			}
			if err := reply(opt, nbdRepAck, nil); err != nil {
				return err
			}
			if opt == nbdOptGo {
				return nil
			}
		case nbdOptAbort:
			_ = reply(opt, nbdRepAck, nil)
			return errors.New("vmtest: disk: client aborted")
		default: // structured replies, meta contexts, lists: not offered
			if err := reply(opt, nbdRepErrUnsup, nil); err != nil {
				return err
			}
		}
	}
}
