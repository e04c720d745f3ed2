package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kioskd/kioskd/payment/vending/vmcsim"
)

// openStdin returns what the REPL reads; tests replace it.
var openStdin = func() (io.ReadCloser, error) { return interruptible(os.Stdin) }

// vmc plays a vending machine with a Qibixx MDB adapter on a pty behind
// -link, for kioskd's vending: section, until ctx ends or the REPL quits.
func vmc(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vmc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	link := fs.String("link", "", "path of the symlink kioskd opens as the adapter's port (its vending.port)")
	var products []vmcsim.Product
	fs.Func("product", `a product "ITEM:NAME:KOPECKS", repeatable (default: a demo assortment)`, func(s string) error {
		p, err := parseProduct(s)
		products = append(products, p)
		return err
	})
	timeout := fs.Duration("vmc-timeout", 0, "how long the machine waits for approval (0: the vend_timeout kioskd configures)")
	dispense := fs.Duration("dispense", time.Second, "how long a product takes to drop")
	trace := fs.Bool("trace", false, "print every line on the wire")
	repl := fs.Bool("repl", true, "read commands from stdin (false: run until SIGINT/SIGTERM)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *link == "" {
		return errors.New("vmc: -link is required")
	}
	m, err := vmcsim.New(vmcsim.Config{Link: *link, Products: products, VMCTimeout: *timeout,
		DispenseTime: *dispense, Narrate: stdout, Trace: *trace})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	if *repl {
		in, err := openStdin()
		if err == nil {
			err = m.REPL(ctx, in, stdout)
		}
		cancel()
		if rerr := <-done; err == nil {
			err = rerr
		}
		return cleanExit(err)
	}
	fmt.Fprintf(stdout, "vending machine with a Qibixx adapter at %s\n", *link)
	return cleanExit(<-done)
}

// cleanExit: the end of the context (SIGINT, SIGTERM, quit) is a clean exit.
func cleanExit(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// parseProduct reads "ITEM:NAME:KOPECKS"; the name may hold colons.
func parseProduct(s string) (vmcsim.Product, error) {
	item, rest, ok1 := strings.Cut(s, ":")
	i := strings.LastIndexByte(rest, ':')
	bad := fmt.Errorf("product %q: want ITEM:NAME:KOPECKS, e.g. 11:Вода 0,5 л:8000", s)
	if !ok1 || i < 1 {
		return vmcsim.Product{}, bad
	}
	n, err1 := strconv.Atoi(item)
	price, err2 := strconv.ParseInt(rest[i+1:], 10, 64)
	if err1 != nil || err2 != nil {
		return vmcsim.Product{}, bad
	}
	return vmcsim.Product{Item: n, Name: rest[:i], Price: price}, nil
}

// interruptible returns a non-blocking duplicate of f, whose Close ends a
// pending Read, so the REPL's reader ends with the command.
func interruptible(f *os.File) (io.ReadCloser, error) {
	fd, err := unix.Dup(int(f.Fd()))
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		return nil, fmt.Errorf("vmc: stdin: %w", err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}
