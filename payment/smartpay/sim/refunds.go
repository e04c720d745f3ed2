package sim

// The handlers of what follows a payment: refunds and fiscal records.

import (
	"fmt"
	"time"

	sp "github.com/kioskd/kioskd/payment/smartpay"
)

// onRefund is onPurchase for refunds.
func (s *Server) onRefund(kassa, id string, f func(r *refund) (any, *apiErr)) (any, *apiErr) {
	if e := required("refund_id", id); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.refunds[id]
	if !ok || r.Kassa != kassa {
		return nil, fail(sp.CodeNotFound)
	}
	s.advanceRefundLocked(r, time.Now())
	return f(r)
}

func digits16(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// addFiscal records r, under the lock, after checking that its purchase (if
// any) is this kassa's.
func (s *Server) addFiscal(kassa string, r FiscalRecord) (any, *apiErr) {
	record := func(*purchase) (any, *apiErr) {
		r.Kassa, r.At = kassa, time.Now()
		s.fiscal = append(s.fiscal, r)
		return struct{}{}, nil
	}
	if r.PurchaseID == "" { // v2 for a purchase paid by another method
		s.mu.Lock()
		defer s.mu.Unlock()
		return record(nil)
	}
	return s.onPurchase(kassa, r.PurchaseID, record)
}

func (s *Server) fiscalV1(kassa string, in *sp.FiscalV1Request) (any, *apiErr) {
	if e := required("purchase_id", in.PurchaseID, "kkt_reg_number", in.KKTRegNumber, "fiscal_sign", in.FiscalSign); e != nil {
		return nil, e
	}
	if !digits16(in.KKTRegNumber) {
		return nil, fail(sp.CodeBadRequest, "kkt_reg_number must be 16 digits")
	}
	return s.addFiscal(kassa, FiscalRecord{Version: 1, PurchaseID: in.PurchaseID,
		KKTRegNumber: in.KKTRegNumber, FiscalSign: in.FiscalSign})
}

func (s *Server) fiscalV2(kassa string, in *sp.FiscalV2Request) (any, *apiErr) {
	rc := in.Receipt
	if e := required("qr.id_loyalty", in.QR.IDLoyalty, "qr.encrypted", in.QR.Encrypted, "qr.sign", in.QR.Sign,
		"receipt.fiscal_sign", rc.FiscalSign, "receipt.operation", rc.Operation); e != nil {
		return nil, e
	}
	switch {
	case !digits16(rc.KKTRegNumber) || !digits16(rc.FNNumber):
		return nil, fail(sp.CodeBadRequest, "kkt_reg_number and fn_number must be 16 digits")
	case rc.Operation != sp.OperationIncome && rc.Operation != sp.OperationIncomeReturn:
		return nil, fail(sp.CodeBadRequest, "operation must be income or income_return")
	case rc.Total < 0 || rc.FDNumber <= 0 || rc.DateTime.IsZero() || len(rc.Items) == 0:
		return nil, fail(sp.CodeBadRequest, "receipt needs fd_number, datetime, total >= 0 and items")
	}
	// The QR may be one already committed (its OTP used) or scanned for loyalty
	// only, and fiscal data may arrive hours later: check who made it, not
	// freshness or single use.
	if _, _, _, e := s.openQR(in.QR); e != nil {
		return nil, e
	}
	rc.Items = append([]sp.ReceiptItem(nil), rc.Items...)
	return s.addFiscal(kassa, FiscalRecord{Version: 2, PurchaseID: in.PurchaseID, IDLoyalty: in.QR.IDLoyalty, Receipt: &rc})
}

func (s *Server) refund(kassa string, in *sp.RefundRequest) (any, *apiErr) {
	if e := required("purchase_id", in.PurchaseID, "kassa_refund_id", in.KassaRefundID); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := kassaKey{kassa, in.KassaRefundID}
	if id, ok := s.refundByKassa[key]; ok { // a repeat: the same answer
		r := s.refunds[id]
		if r.PurchaseID != in.PurchaseID || r.Amount != in.Amount {
			return nil, fail(sp.CodeIdempotencyConflict, "kassa_refund_id "+in.KassaRefundID)
		}
		return sp.RefundResponse{RefundID: id}, nil
	}
	if in.Amount <= 0 {
		return nil, fail(sp.CodeBadAmount)
	}
	p, e := s.purchaseLocked(kassa, in.PurchaseID)
	switch {
	case e != nil:
		return nil, e
	case p.Status != sp.Success:
		return nil, fail(sp.CodeRefundNotAllowed, string(p.Status))
	case p.Refunded+in.Amount > p.Amount:
		return nil, fail(sp.CodeRefundExceedsAmount, fmt.Sprintf("%d + %d > %d", p.Refunded, in.Amount, p.Amount))
	}
	r := &refund{Refund: Refund{ID: newID("ref-"), Kassa: kassa, KassaRefundID: in.KassaRefundID,
		PurchaseID: p.ID, Amount: in.Amount, Status: sp.RefundPending, KassaConfirmations: []sp.KassaStatus{}},
		createdAt: time.Now()}
	p.Refunded += in.Amount
	s.refunds[r.ID] = r
	s.refundOrder = append(s.refundOrder, r.ID)
	s.refundByKassa[key] = r.ID
	return sp.RefundResponse{RefundID: r.ID}, nil
}

func (s *Server) refundStatus(kassa string, in *sp.RefundIDBody) (any, *apiErr) {
	return s.onRefund(kassa, in.RefundID, func(r *refund) (any, *apiErr) {
		return sp.RefundStatusResponse{RefundID: r.ID, Status: r.Status}, nil
	})
}

func (s *Server) refundKassaStatus(kassa string, in *sp.RefundKassaStatusBody) (any, *apiErr) {
	if e := required("refund_id", in.RefundID, "status", string(in.Status)); e != nil {
		return nil, e
	}
	return s.onRefund(kassa, in.RefundID, func(r *refund) (any, *apiErr) {
		return confirmable{string(r.Status), r.Status == sp.RefundSuccess, &r.Confirmed, &r.KassaConfirmations, func() *apiErr {
			switch {
			case r.Confirmed:
				return fail(sp.CodeBadState, "refund confirmed")
			case r.Status == sp.RefundPending || r.Status == sp.RefundSuccess:
				r.Status = sp.RefundCancelled
				s.purchases[r.PurchaseID].Refunded -= r.Amount // the amount can be refunded again
			}
			return nil
		}}.apply(in.Status)
	})
}
