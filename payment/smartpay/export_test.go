package smartpay

// NewConnPerCall makes c open a new TLS connection for every call, as a client
// without a warm connection would: the baseline of BenchmarkCommit.
func (c *Client) NewConnPerCall() {
	c.tr.DisableKeepAlives = true
	c.tr.CloseIdleConnections()
}
