package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"sync"
	"testing"
)

// nbdClient speaks the client side of the protocol as QEMU does: fixed
// newstyle, an unsupported option first (structured replies), then GO.
type nbdClient struct {
	t    *testing.T
	c    net.Conn
	r    *bufio.Reader
	size uint64
	next uint64
}

func dialNBD(t *testing.T, path string) *nbdClient {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	n := &nbdClient{t: t, c: c, r: bufio.NewReader(c)}
	var hs [18]byte
	n.read(hs[:])
	if binary.BigEndian.Uint64(hs[0:]) != nbdMagic || binary.BigEndian.Uint64(hs[8:]) != nbdOptMagic {
		t.Fatalf("handshake %x", hs)
	}
	n.write(binary.BigEndian.AppendUint32(nil, nbdFlagFixed|nbdFlagNoZeroes))
	n.option(8, nil) // NBD_OPT_STRUCTURED_REPLY
	if typ, _ := n.optReply(); typ != nbdRepErrUnsup {
		t.Fatalf("structured replies: reply %#x, want unsupported", typ)
	}
	n.option(nbdOptGo, []byte{0, 0, 0, 0, 0, 0}) // empty name, no info requests
	typ, data := n.optReply()
	if typ != nbdRepInfo || binary.BigEndian.Uint16(data) != nbdInfoExport {
		t.Fatalf("GO: reply %#x %x", typ, data)
	}
	n.size = binary.BigEndian.Uint64(data[2:])
	if flags := binary.BigEndian.Uint16(data[10:]); flags&nbdTxSendFlush == 0 {
		t.Fatalf("transmission flags %#x: no flush", flags)
	}
	if typ, _ := n.optReply(); typ != nbdRepAck {
		t.Fatalf("GO: reply %#x, want ack", typ)
	}
	return n
}

func (n *nbdClient) read(b []byte) {
	n.t.Helper()
	if _, err := io.ReadFull(n.r, b); err != nil {
		n.t.Fatal(err)
	}
}

func (n *nbdClient) write(b []byte) {
	n.t.Helper()
	if _, err := n.c.Write(b); err != nil {
		n.t.Fatal(err)
	}
}

func (n *nbdClient) option(opt uint32, data []byte) {
	b := binary.BigEndian.AppendUint64(nil, nbdOptMagic)
	b = binary.BigEndian.AppendUint32(b, opt)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	n.write(append(b, data...))
}

func (n *nbdClient) optReply() (uint32, []byte) {
	var h [20]byte
	n.read(h[:])
	data := make([]byte, binary.BigEndian.Uint32(h[16:]))
	n.read(data)
	return binary.BigEndian.Uint32(h[12:]), data
}

// cmd sends one request and returns the error code and, for reads, data.
func (n *nbdClient) cmd(typ, flags uint16, off uint64, length uint32, data []byte) (uint32, []byte) {
	n.t.Helper()
	n.next++
	b := binary.BigEndian.AppendUint32(nil, nbdReqMagic)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint64(b, n.next)
	b = binary.BigEndian.AppendUint64(b, off)
	b = binary.BigEndian.AppendUint32(b, length)
	n.write(append(b, data...))
	var rep [16]byte
	n.read(rep[:])
	if binary.BigEndian.Uint32(rep[0:]) != nbdSimpleMagic || binary.BigEndian.Uint64(rep[8:]) != n.next {
		n.t.Fatalf("reply %x", rep)
	}
	code := binary.BigEndian.Uint32(rep[4:])
	if typ == nbdCmdRead && code == 0 {
		out := make([]byte, length)
		n.read(out)
		return code, out
	}
	return code, nil
}

func (n *nbdClient) put(off uint64, s string, fua bool) {
	n.t.Helper()
	var f uint16
	if fua {
		f = nbdCmdFlagFUA
	}
	if code, _ := n.cmd(nbdCmdWrite, f, off, uint32(len(s)), []byte(s)); code != 0 {
		n.t.Fatalf("write at %d: error %d", off, code)
	}
}

func (n *nbdClient) get(off uint64, length int) string {
	n.t.Helper()
	code, b := n.cmd(nbdCmdRead, 0, off, uint32(length), nil)
	if code != 0 {
		n.t.Fatalf("read at %d: error %d", off, code)
	}
	return string(bytes.TrimRight(b, "\x00"))
}

func (n *nbdClient) flush() {
	n.t.Helper()
	if code, _ := n.cmd(nbdCmdFlush, 0, 0, 0, nil); code != 0 {
		n.t.Fatalf("flush: error %d", code)
	}
}

func serveDisk(t *testing.T) (*Disk, string) {
	t.Helper()
	dir := t.TempDir()
	d, err := OpenDisk(filepath.Join(dir, "disk.img"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "nbd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := d.Serve(ctx, ln); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait(); d.Close() })
	d.PowerOn()
	return d, sock
}

// The cache model: reads see acknowledged writes; a cut loses what no flush
// (or FUA write) made durable; the disk answers EIO until powered on.
func TestDiskLosesUnflushedWrites(t *testing.T) {
	d, sock := serveDisk(t)
	c := dialNBD(t, sock)
	if c.size != 1<<20 {
		t.Fatalf("size %d", c.size)
	}
	c.put(0, "flushed", false)
	c.flush()
	c.put(4096, "fua", true)
	c.put(8192, "cached", false)
	c.put(8192+3, "CACHED", false) // overlaps the last one
	if got := c.get(8192, 16); got != "cacCACHED" {
		t.Fatalf("read through the cache: %q", got)
	}
	r := d.Cut(rand.New(rand.NewPCG(1, 2)), 0)
	if r.Writes != 2 || r.Kept != 0 || r.Dropped != 2 {
		t.Fatalf("cut: %+v", r)
	}
	if code, _ := c.cmd(nbdCmdRead, 0, 0, 16, nil); code != nbdEIO {
		t.Fatalf("read after the cut: error %d, want EIO", code)
	}
	d.PowerOn()
	c2 := dialNBD(t, sock)
	for off, want := range map[uint64]string{0: "flushed", 4096: "fua", 8192: ""} {
		if got := c2.get(off, 16); got != want {
			t.Errorf("after the cut, at %d: %q, want %q", off, got, want)
		}
	}
}

// A cut keeps each 4 KiB piece of the cache at the given probability: 1
// keeps everything (only the guest's page cache is lost), and a write
// across pieces can be torn.
func TestDiskCutKeepsPieces(t *testing.T) {
	d, sock := serveDisk(t)
	c := dialNBD(t, sock)
	c.put(100, "kept", false)
	if r := d.Cut(rand.New(rand.NewPCG(1, 2)), 1); r.Kept != 1 || r.Dropped != 0 {
		t.Fatalf("cut keep=1: %+v", r)
	}
	d.PowerOn()
	c = dialNBD(t, sock)
	if got := c.get(100, 8); got != "kept" {
		t.Fatalf("after a cut that keeps the cache: %q", got)
	}
	big := bytes.Repeat([]byte("x"), 64<<10)
	if code, _ := c.cmd(nbdCmdWrite, 0, 2048, uint32(len(big)), big); code != 0 {
		t.Fatal(code)
	}
	r := d.Cut(rand.New(rand.NewPCG(3, 4)), 0.5)
	// 2048..67584 crosses 17 pieces of the 4 KiB grid.
	if r.Kept+r.Dropped != 17 || r.Kept == 0 || r.Dropped == 0 {
		t.Fatalf("cut keep=0.5 of a 64 KiB write: %+v", r)
	}
}

// The flush hook can cut the power before the flush is applied: the flush
// fails and its writes are lost.
func TestDiskCutAtFlush(t *testing.T) {
	d, sock := serveDisk(t)
	c := dialNBD(t, sock)
	d.BeforeFlush(func(n int) {
		if n == 2 {
			d.Cut(rand.New(rand.NewPCG(5, 6)), 0)
		}
	})
	c.put(0, "one", false)
	c.flush()
	c.put(4096, "two", false)
	if code, _ := c.cmd(nbdCmdFlush, 0, 0, 0, nil); code != nbdEIO {
		t.Fatalf("flush 2: error %d, want EIO", code)
	}
	d.PowerOn()
	c = dialNBD(t, sock)
	if a, b := c.get(0, 8), c.get(4096, 8); a != "one" || b != "" {
		t.Fatalf("after a cut at flush 2: %q %q", a, b)
	}
}
