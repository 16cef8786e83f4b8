// Package stream is cratestream's stream runtime: a thin "Kafka Streams for
// Go" on franz-go. A Processor declares a consumer group's inputs, its
// changelog-backed tables, timers, broadcast inputs and global tables; a
// Runner runs one instance of it against Kafka, and the Driver (through
// package streamtest) runs its handlers in memory for tests.
//
// # Tasks and goroutines
//
// Each assigned partition of the (co-partitioned) inputs is a task with its
// own stores, restored from their changelogs before the task handles input.
// One goroutine, the Runner's loop, polls, runs every handler, timer
// callback and broadcast delivery, and commits; handlers never run
// concurrently and need no locks for their own state. Rebalance callbacks
// run on kgo's goroutines and take the loop's lock, so they see no
// half-handled batch. Global tables and the broadcast consumer read on
// goroutines of their own; store lookups (Lookup, the ops server's
// /v1/stores/) read committed state from any goroutine.
//
// # The handler contract
//
// A handler gets a Ctx and one decoded record (a timer callback its
// payload) and returns:
//
//   - nil: its table writes, timer changes and emitted records form one unit
//     of work, committed with the input's offset (exactly-once: in one Kafka
//     transaction; at-least-once: writes and outputs before the offset).
//   - an error wrapped with Invalid (or Invalidf): the record is bad input.
//     Its effects are undone and it goes to the dead-letter topic (dlq.v1)
//     with its bytes, position and the reason; the records after it are
//     handled. A record that does not decode, or is larger than
//     MaxRecordBytes, goes there too, without reaching the handler.
//   - any other error: a transient fault of something outside (Redis, a
//     store). The effects of everything since the last commit are undone,
//     the failing partition pauses with exponential backoff (timers and
//     broadcasts hold as a whole), and the records are handled again.
//
// A timer whose payload does not decode, or whose callback returns Invalid,
// is dropped and dead-lettered like a record (its topic "timer:<name>", its
// key the timer's id, its value the payload).
//
// A panic in a handler is bad input of class "panic": the record is
// dead-lettered with the panic's value and the stack is logged. When more
// than MaxDeadLetterRatio of a window of DeadLetterWindow records were
// dead-lettered — a bug that makes every record panic, a producer writing
// garbage — the processor halts: its input pauses, /readyz reports why, and
// it stays so until restarted, rather than draining the topic into dlq.v1.
// A panic outside a handler (the runtime, a codec while committing, a
// store) ends Run with the panic and its stack: the process exits and its
// restart restores from the changelogs. Transient failures of a whole
// session (a fenced producer, an outage longer than the client's retries)
// restart the session with backoff; configuration errors (missing topics,
// inputs not co-partitioned) end Run.
//
// Changes made in place to a value returned by Get are not undone: validate
// input before modifying state, or Put a copy.
//
// # Files
//
// runner.go holds the Runner's lifecycle (sessions, shutdown, status),
// loop.go the processing loop, engine.go what runs handlers (no Kafka
// client), rebalance.go the tasks as partitions come and go, commit.go the
// committer interface with commit_eos.go and commit_alo.go behind it,
// restore.go the changelog replay, broadcast.go, timer.go, table.go,
// global.go and lookup.go the features their names say, failpoint.go the
// chaos suite's kill points.
package stream
