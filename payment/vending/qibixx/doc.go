// Package qibixx drives a Qibixx MDB adapter (MDB Pi HAT, MDB-USB) as the
// cashless device of a vending machine: kioskd approves or denies the
// machine's vend requests and learns the vend results. A Device implements
// vending.Machine.
//
// # The link
//
// The adapter speaks ASCII lines ending in "\n" at 115200 baud over a UART
// (Pi HAT) or a USB CDC-ACM tty (MDB-USB), opened with tarm/serial. Host →
// adapter commands start with a capital letter, the answers of the same
// function with the small one (C/c the cashless slave, D/d the cashless
// master, X/x the sniffer, F/f configuration…); "r,ACK" lines mean the VMC
// polled the slave [V: docs.qibixx.com, "Vending Sessions Examples"].
//
// # Lines and where they come from
//
// [V] = read in the named source; [I] = inferred, to be checked on a real
// adapter. The public clients read were jiroscripts/sumup-mdb-qibixx
// (mdb_bridge/mdb_service.py), charlesonogwu/Open-MDB (docs, listener),
// maehw/mdb-coin-controller (MdbCoinController.py: V → "v,…", "r,ACK"/NACK
// replies in master mode), and clients found by searching for
// "c,VEND,SUCCESS" (Python, JavaScript, Kotlin), plus the vendor's tutorials
// at docs.qibixx.com.
//
// Host → adapter (command.go):
//
//	C,0 / C,1                  slave off / on [V: docs, every client]
//	C,SETCONF,<key>=<value>    answered c,SET,OK; only while the slave is off,
//	                           after every power-on [V: docs "Configuration"]
//	C,START,<funds>            begin a session, authorization-first [V]
//	C,VEND,<amount>            approve the pending vend request [V: docs
//	                           "Accept a Vend Request from VMC in Always Idle"]
//	C,STOP                     deny it [V: the same tutorial; most clients].
//	                           C,VEND,-1 ("stop an active session") appears in
//	                           the vendor's API page and two clients; C,STOP is
//	                           what the always-idle tutorial uses, so it is ours.
//	C,DISPLAY,<text>           ≤ 32 characters on the VMC's display [V: JS client
//	                           quoting the API page]
//	V                          version, answered v,<sw version>,<cpu id> [V]
//
// SETCONF keys [V: a client's table transcribed from the vendor's API page]:
// mdb-address (0x10/0x60), mdb-currency-code (0x1 + ISO 4217 numeric: RUB is
// 0x1643), mdb-scale-factor (1–100 there; MDB allows 255), mdb-decimal-places
// (0–3), mdb-always-idle (0/1), mdb-timeout-vend (seconds, "vend confirm
// timeout"). One old client writes mdb-addr; we use mdb-address.
//
// Adapter → host (line.go):
//
//	c,1 / c,0                          slave on / off answered [V]
//	c,SET,OK                           SETCONF accepted [V]
//	c,STATUS,INACTIVE|DISABLED|ENABLED the reader's MDB state [V]
//	c,STATUS,IDLE[,<funds>]            session idle [V: "c,STATUS,IDLE,0"]
//	c,STATUS,VEND,<amount>,<item>      vend request, amount in currency units,
//	                                   e.g. c,STATUS,VEND,1.00,2 [V]
//	c,VEND,SUCCESS                     dispensed; then c,STATUS,IDLE and
//	                                   c,STATUS,ENABLED [V: the tutorial]
//	c,ERR,VEND 3                       not dispensed [V: the tutorial]
//	c,ERR,<text>, c,ERR,"<text>"       other errors, e.g. c,ERR,"START -3" [V];
//	                                   never read as a vend result
//	c,STATUS,ONLINE|OFFLINE            the slave's own state, one client's
//	                                   firmware [V]
//	r,ACK / r,NACK                     VMC traffic [V] / [I]
//	v,…                                version [V]
//
// Everything else is unknown; a known line with wrong fields is malformed.
// Both are logged once per distinct kind and ignored. A line is at most
// MaxLineLen bytes; longer runs are dropped up to the next newline.
//
// # The vend, as status lines show it
//
// Enabled → c,STATUS,VEND,… (request) → C,VEND (approve) → c,VEND,SUCCESS or
// c,ERR,VEND 3 → IDLE → ENABLED [V]. A request that returns to IDLE or
// ENABLED without an answer was given up by the VMC: the customer cancelled
// or its vend timeout ran out [I: the lines do not say which]. INACTIVE means
// the VMC reset the reader [I: the state after MDB RESET]; between approval
// and result MDB counts that as a success [V: MDB 4.2]. A request the device
// cannot pay exactly (see Money) or whose price differs from the catalogue's
// is denied by the device itself.
//
// The state machine of one vend is decide in session.go, a pure function;
// Device applies its actions.
//
// # Resets and unplugs
//
// Every time the port opens the adapter is configured from scratch (it
// forgets its parameters at power-on). An MDB-USB that reboots or is
// unplugged drops its tty: the reader sees EIO, a hung-up tty or the node
// gone, and the Device reopens it. A Pi HAT's UART never goes away, so the
// Device probes a silent adapter with V; one that stops answering is
// reported (vending.AdapterNotAnswering) and configured again as soon as it
// answers. Either way a vend in progress ends with SessionCancelled or
// VendResultUnknown, never with a guessed result.
package qibixx
