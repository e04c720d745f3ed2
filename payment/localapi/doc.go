// Package localapi is the local control API of the payment flow for the host
// application (a kiosk or vending controller): HTTP/JSON on a unix socket
// (mode 0660) and, optionally, on a loopback TCP address guarded by a bearer
// token, with a server-sent event stream of every state change.
//
//	GET  /v1/state                  the flow's Status
//	POST /v1/sale                   {"amount": kopecks}
//	POST /v1/sale/cancel
//	POST /v1/sale/handover          {"ok": bool}
//	POST /v1/sale/paid-elsewhere    {"receipt": {...}}
//	POST /v1/sale/fiscal            {"kkt_reg_number", "fiscal_sign", "receipt"?, "purchase_id"?}
//	POST /v1/refunds                {"purchase_id", "amount", "request_id"?} (or header Idempotency-Key: a repeat returns the first refund)
//	GET  /v1/refunds/{id}
//	POST /v1/scan                   {"data": "..."}
//	GET  /v1/events                 text/event-stream
//	GET  /healthz                   200 ready / 503 with reasons
//
// Errors are {"error": "..."} with 400 (malformed), 401 (bad token), 404,
// 409 (not allowed in the current state), 413 (body too large), 422 (refused
// by the payment service; "code" carries its code) or 503 (not running). A
// request that is refused never changes state.
package localapi
