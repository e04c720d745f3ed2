// Package crashtest holds the crash suite of the payment flow: the test
// binary re-executes itself as the agent (flow, journal file, local API on a
// unix socket, mTLS client), the simulator runs in the test process, and a
// simulator middleware kills the agent with SIGKILL just before or just after
// a chosen call takes effect. The agent is then restarted on the same journal
// and the simulator's state must converge: no purchase left unconfirmed and
// uncancelled, no double commit, no money kept for goods not handed over,
// every fiscal record delivered.
package crashtest
