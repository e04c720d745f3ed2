// Package journal is the durable record of the payment flow: every sale and
// refund with its ids and phase, and the queue of fiscal records, kept in a
// bbolt file that is fsynced on every commit.
//
// The flow writes a record *before* the call it leads to (a commit, a
// release, a kassa/status…), so after a crash or power cut the record says
// which call may have happened and recovery knows what to repeat or undo.
// The ids the kassa sends (kassa_purchase_id, kassa_refund_id) come from a
// millisecond clock and are strictly increasing across restarts and clock
// steps: the last id issued is stored in the same transaction as the record
// that uses it.
package journal
