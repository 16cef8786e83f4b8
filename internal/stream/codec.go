package stream

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"
)

// Codec turns values of one type into record bytes and back. Decode must
// return an error, never panic, on bytes it cannot read: those records go to
// the dead-letter topic.
type Codec[T any] interface {
	// Append appends the encoding of v to dst.
	Append(dst []byte, v T) ([]byte, error)
	Decode(b []byte) (T, error)
}

// StringCodec encodes strings as their UTF-8 bytes. It is the key encoding
// of every string-keyed topic.
type StringCodec struct{}

func (StringCodec) Append(dst []byte, v string) ([]byte, error) { return append(dst, v...), nil }
func (StringCodec) Decode(b []byte) (string, error)             { return string(b), nil }

// Int64Codec encodes integers as decimal ASCII ("419069"), so keys stay
// readable in every Kafka tool and hash the same from any client.
type Int64Codec struct{}

func (Int64Codec) Append(dst []byte, v int64) ([]byte, error) {
	return strconv.AppendInt(dst, v, 10), nil
}
func (Int64Codec) Decode(b []byte) (int64, error) {
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("decimal int64 key %q: %w", b, err)
	}
	return v, nil
}

// BytesCodec passes bytes through unchanged.
type BytesCodec struct{}

func (BytesCodec) Append(dst []byte, v []byte) ([]byte, error) { return append(dst, v...), nil }
func (BytesCodec) Decode(b []byte) ([]byte, error)             { return b, nil }

// ProtoCodec encodes a protobuf message type. PT is the pointer type, which
// callers never spell: Proto[pb.Interaction]() is a Codec[*pb.Interaction].
type ProtoCodec[T any, PT interface {
	*T
	proto.Message
}] struct{}

// Proto returns the codec of protobuf message type T.
func Proto[T any, PT interface {
	*T
	proto.Message
}]() ProtoCodec[T, PT] {
	return ProtoCodec[T, PT]{}
}

var marshalOpts = proto.MarshalOptions{Deterministic: true}

func (ProtoCodec[T, PT]) Append(dst []byte, v PT) ([]byte, error) {
	return marshalOpts.MarshalAppend(dst, v)
}

func (ProtoCodec[T, PT]) Decode(b []byte) (PT, error) {
	m := PT(new(T))
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, err
	}
	return m, nil
}
