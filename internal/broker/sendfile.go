package broker

import (
	"errors"
	"io"
	"net"
	"runtime"
	"syscall"

	"github.com/fjord-io/fjord/internal/commitlog"
)

// tcpCork is Linux's TCP_CORK socket option (netinet/tcp.h), which the
// syscall package defines only for Linux builds.
const tcpCork = 3

// cork holds back partial TCP segments on nc until the returned function is
// called, so that a response written in several calls (write, sendfile,
// write) is sent in as few segments as its size allows. Without it each
// call pushes its own segment, and over loopback each segment costs a trip
// through the receiver's network stack. It returns nil, doing nothing, when
// nc is not a TCP connection on Linux.
func cork(nc net.Conn) (uncork func()) {
	tc, ok := nc.(*net.TCPConn)
	if !ok || runtime.GOOS != "linux" {
		return nil
	}
	sc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	set := func(v int) error {
		var serr error
		if err := sc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpCork, v)
		}); err != nil {
			return err
		}
		return serr
	}
	if set(1) != nil {
		return nil
	}
	// Uncorking sends what is held back at once.
	return func() { set(0) }
}

// sendView writes a view's bytes to nc. On a TCP connection the kernel copies
// them from the page cache to the socket (sendfile(2)); otherwise they go
// through a buffer.
func sendView(nc net.Conn, v *commitlog.View) error {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return copyView(nc, v)
	}
	sc, err := tc.SyscallConn()
	if err != nil {
		return copyView(nc, v)
	}
	fc, err := v.File().SyscallConn()
	if err != nil {
		return copyView(nc, v)
	}
	off, remaining := v.Pos(), v.Len()
	var sendErr error
	ctlErr := fc.Control(func(ffd uintptr) {
		werr := sc.Write(func(sfd uintptr) bool {
			for remaining > 0 {
				n, err := syscall.Sendfile(int(sfd), int(ffd), &off, remaining)
				if n > 0 {
					remaining -= n
				}
				switch {
				case errors.Is(err, syscall.EAGAIN):
					return false // wait until the socket is writable
				case errors.Is(err, syscall.EINTR):
					continue
				case err != nil:
					sendErr = err
					return true
				case n == 0:
					sendErr = io.ErrUnexpectedEOF // the file is shorter than the view
					return true
				}
			}
			return true
		})
		if sendErr == nil {
			sendErr = werr
		}
	})
	if ctlErr != nil {
		return ctlErr
	}
	return sendErr
}

func copyView(w io.Writer, v *commitlog.View) error {
	buf := make([]byte, v.Len())
	if err := v.ReadAt(buf); err != nil {
		return err
	}
	_, err := w.Write(buf)
	return err
}
