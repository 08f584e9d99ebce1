// Package cluster is the control plane's domain: what a cluster is (its Spec
// and State), the records the store keeps about it (nodes, operations,
// configurations), the rules a request must satisfy (validation, the calls
// each state allows) and the ARNs that name all of it.
//
// The package does no I/O. Its Error type is how every layer tells the API
// edge that a request can be fixed by its caller.
package cluster
