// Package vmcsim emulates a vending machine whose controller (VMC) has a
// Qibixx MDB adapter in it, as kioskd sees it: a pty behind a symlink, the
// adapter's USB tty, speaking the adapter's side of the line protocol
// described in package qibixx.
//
// The emulator plays both the adapter (it answers V, takes C,SETCONF only
// while the slave is off, answers c,SET,OK, c,1, c,0) and the machine (after
// C,1 the VMC sets the reader up: INACTIVE, DISABLED, ENABLED; a selection
// sends c,STATUS,VEND,<price>,<item>; C,VEND drops the product and reports
// c,VEND,SUCCESS or c,ERR,VEND 3; C,STOP or C,VEND,-1 denies). It behaves
// like a real VMC where it matters to kioskd:
//
//   - the VMC waits for approval only for its own vend timeout (by default
//     the adapter's mdb-timeout-vend), then gives up the selection;
//   - an approval of another amount than the price is refused;
//   - a reset of the reader between Vend Approved and the result counts as a
//     success (MDB's rule): the outcome is ResetAfterApproval, the product is
//     taken as dispensed and no result line is sent;
//   - the adapter forgets its configuration when it reboots; an MDB-USB's tty
//     goes away meanwhile (ResetAdapter(true)), a Pi HAT's just falls silent.
//
// Tests script it with its methods (Select, Cancel, SetDispense, ResetVMC,
// ResetAdapter, Unplug, Silence, Raw for garbage and out-of-order lines…)
// and observe it with Snapshot and Wait. People drive it with REPL, which
// `smartpay-sim vmc` runs on the terminal.
package vmcsim
