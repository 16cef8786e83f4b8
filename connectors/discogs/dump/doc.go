// Package dump decodes the Discogs monthly data dumps (releases.xml and
// masters.xml, gzipped or not) into pb.Release and pb.Master records, one
// at a time.
//
// The files are tens of gigabytes, so the decoder streams: memory is a
// read buffer that holds the current record (bounded by MaxRecordSize,
// 64 MiB by default; real records are a few kB) plus, for gzip input, four
// 256 KiB read-ahead chunks, whatever the file size. It does not use
// encoding/xml, whose token reader manages about a sixth of the speed: a
// purpose-built scanner finds tags with bytes.IndexByte, decodes entities
// only in the fields it keeps, and skips the rest (tracklists, images,
// videos, credits, identifiers, notes, companies) checking only that the
// tags nest. It reads the schemas of 2017 through 2026, including
// pretty-printed single records without a root element. Gzip is inflated
// in a goroutine ahead of the scanner, which helps when a second core is
// free; Close stops it.
//
// # Errors
//
// NextRelease and NextMaster return io.EOF at the end. A bad record (no or
// non-numeric id, tags that do not nest, an invalid entity or UTF-8, a
// record over MaxRecordSize) comes back as a *RecordError with its offset,
// id, reason and raw bytes, and the next call goes on with the following
// record: send it to the dead-letter topic. Anything else is fatal and
// sticky: ErrTruncated (the input ends inside the document, such as a cut
// download), ErrMalformed (not a dump of that kind), ErrResume, or a read or
// gzip error.
//
// # Progress
//
// Stats returns counters (records, bad, bytes decompressed and read) that
// another goroutine may poll to print records/s and bytes/s.
//
// # Resuming after a crash
//
// After each record (including a *RecordError), Position returns a
// resume token: the record's id and the uncompressed offset of its start
// tag. Persist the token of the last record whose output is durable (for a
// Kafka producer, after the flush that covers it). To resume, open the same
// file again and pass ResumeAfter(token): the decoder discards the bytes
// before the offset without parsing them (gzip still has to inflate them,
// at about 300 MB/s), checks that the record there has the token's id, and
// returns the record after it. Records between the token and the crash are
// produced again, so consumers must be idempotent (event_id is
// deterministic, "dump:releases:<id>", and the topics are keyed by id).
//
// A token with only an ID (Offset 0) also works, for example one rebuilt
// from the last id found in the output topic: then the decoder scans
// records, without decoding them, through the one with that id. It matches
// the id exactly rather than relying on order: releases dumps are in
// ascending id order, but the 2017 masters dump is not.
package dump
