package scanner

import "errors"

// WithHotplugEvents returns opts with the hotplug listener replaced by
// events: each value sent wakes the down scanners.
func WithHotplugEvents(opts SupervisorOptions, events <-chan struct{}) SupervisorOptions {
	opts.hotplugEvents = events
	return opts
}

// ErrNoUeventSocket is what WithoutUeventSocket makes the listener fail with.
var ErrNoUeventSocket = errors.New("uevent socket refused (test)")

// WithoutUeventSocket returns opts whose hotplug listener cannot be opened,
// as in a sandbox.
func WithoutUeventSocket(opts SupervisorOptions) SupervisorOptions {
	opts.openHotplug = func() (*hotplugListener, error) { return nil, ErrNoUeventSocket }
	return opts
}
