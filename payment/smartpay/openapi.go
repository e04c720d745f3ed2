package smartpay

import _ "embed"

// OpenAPI is openapi.yaml: the wire contract as this package implements it.
// Tests validate the client's requests and the simulator's answers against it.
//
//go:embed openapi.yaml
var OpenAPI []byte
