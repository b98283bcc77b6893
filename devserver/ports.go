package devserver

import (
	"fmt"
	"net"
	"strconv"
)

// loopback is where the internal services listen and where the frontend is dialled from inside
// the process when it listens on an unspecified address.
const loopback = "127.0.0.1"

// ports holds the addresses a server uses, chosen before it starts.
type ports struct {
	frontendPort int
	httpPort     int
	// frontendInternal and httpInternal are the dialable frontend gRPC and HTTP addresses.
	frontendInternal string
	httpInternal     string
	// history, matching and worker are the internal services' loopback host:ports.
	history, matching, worker string
	// ui is the Web UI listen address and uiDial its dialable address; both "" when the UI is off.
	ui, uiDial string
}

// allocatePorts checks that the requested ports are free and picks free ones for the rest. All
// candidate listeners stay open until every port is chosen, so no port is handed out twice. A port
// can still be taken by another process before the server binds it.
func (opts *Options) allocatePorts() (ports, error) {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	reserve := func(what, ip string, port int) (int, error) {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			if port == 0 {
				return 0, fmt.Errorf("find a free port for %s on %s: %w", what, ip, err)
			}
			return 0, fmt.Errorf("%s port %d on %s is not free: %w", what, port, ip, err)
		}
		listeners = append(listeners, l)
		return l.Addr().(*net.TCPAddr).Port, nil
	}

	dialIP := opts.IP
	if net.ParseIP(opts.IP).IsUnspecified() {
		dialIP = loopback
	}
	var p ports
	var err error
	if p.frontendPort, err = reserve("frontend", opts.IP, opts.Port); err != nil {
		return ports{}, err
	}
	if p.httpPort, err = reserve("frontend HTTP", opts.IP, opts.HTTPPort); err != nil {
		return ports{}, err
	}
	p.frontendInternal = net.JoinHostPort(dialIP, strconv.Itoa(p.frontendPort))
	p.httpInternal = net.JoinHostPort(dialIP, strconv.Itoa(p.httpPort))

	for _, svc := range []struct {
		name string
		addr *string
	}{{"history", &p.history}, {"matching", &p.matching}, {"worker", &p.worker}} {
		port, err := reserve(svc.name, loopback, 0)
		if err != nil {
			return ports{}, err
		}
		*svc.addr = net.JoinHostPort(loopback, strconv.Itoa(port))
	}

	if opts.UI {
		port, err := reserve("web UI", opts.IP, opts.UIPort)
		if err != nil {
			return ports{}, err
		}
		p.ui = net.JoinHostPort(opts.IP, strconv.Itoa(port))
		p.uiDial = net.JoinHostPort(dialIP, strconv.Itoa(port))
	}
	return p, nil
}
