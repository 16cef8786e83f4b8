// Package chaos proves the delivery guarantees of the stream runtime with
// real process failures: the Kafka cluster (`cratestream dev kafka`), the
// processors (`cratestream run`) and the checker (`cratestream chaos check`)
// run as separate OS processes of the cratestream binary; the driver
// SIGKILLs, SIGSTOPs and restarts them while input flows, then counts every
// output against every input.
package chaos
