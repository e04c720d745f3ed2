//go:build linux

package main

import "golang.org/x/sys/unix"

const unixNoctty = unix.O_NOCTTY
