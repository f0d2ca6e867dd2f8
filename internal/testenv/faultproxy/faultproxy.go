// Package faultproxy is a TCP proxy for tests that puts a bad network
// between two real processes: it delays every chunk it forwards, resets
// connections at random, or stalls them (holds them open and forwards
// nothing, as a partition does). Faults change while it runs. The kernel
// here has no netem, so this is how the tests get slow and lossy links.
package faultproxy

import (
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Faults are what the proxy does to traffic now.
type Faults struct {
	// Delay is added before forwarding each chunk (up to 32 KiB), each way.
	Delay time.Duration
	// ResetRate is the probability that a chunk's connection is reset
	// instead of forwarded.
	ResetRate float64
	// Stall holds every connection open without forwarding anything.
	Stall bool
}

// Proxy forwards connections from Addr to a target.
type Proxy struct {
	Addr   string
	target string
	ln     net.Listener
	faults atomic.Pointer[Faults]
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	// Resets counts the connections reset on purpose.
	Resets atomic.Int64
}

// Start listens on a free loopback port and forwards to target.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.faults.Store(&Faults{})
	go p.accept()
	return p, nil
}

// Set changes the faults for all traffic from now on.
func (p *Proxy) Set(f Faults) { p.faults.Store(&f) }

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	return err
}

func (p *Proxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *Proxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(in)
	}
}

func (p *Proxy) serve(in net.Conn) {
	out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		in.Close()
		return
	}
	p.track(in, true)
	p.track(out, true)
	defer func() {
		p.track(in, false)
		p.track(out, false)
	}()
	var once sync.Once
	reset := func() {
		once.Do(func() {
			// A reset, not a clean close: SO_LINGER 0.
			if tc, ok := in.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			if tc, ok := out.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			in.Close()
			out.Close()
		})
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				f := p.faults.Load()
				for f.Stall {
					time.Sleep(50 * time.Millisecond)
					f = p.faults.Load()
				}
				if f.Delay > 0 {
					time.Sleep(f.Delay)
				}
				if f.ResetRate > 0 && rand.Float64() < f.ResetRate {
					p.Resets.Add(1)
					reset()
					return
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					reset()
					return
				}
			}
			if err != nil {
				if err == io.EOF {
					if tc, ok := dst.(*net.TCPConn); ok {
						tc.CloseWrite()
						return
					}
				}
				reset()
				return
			}
		}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
	in.Close()
	out.Close()
}
