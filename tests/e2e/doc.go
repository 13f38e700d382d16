// Package e2e tests genrelay end to end through real containers: a
// three-node NATS JetStream cluster, ingress, two moderation replicas and
// the example subscriber, started from the images that `make images`
// builds. The tests send callbacks over HTTP, read the results stream over
// NATS, and inject faults (killed nodes, restarts, a network partition)
// while callbacks keep arriving, then account for every callback.
//
// The tests need Docker. Without it they skip, unless CI=true, when they
// fail. Every published port is bound to 127.0.0.1, and the tests reach
// the containers only through those ports.
package e2e
