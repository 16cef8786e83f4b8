package topics

import (
	"bytes"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cratestream/cratestream/internal/stream"
)

// valueCodec is a topic's value codec without its type: what a consumer
// of the topic runs on a record's value.
type valueCodec struct {
	spec   stream.TopicSpec
	decode func([]byte) (proto.Message, error)
	encode func(proto.Message) ([]byte, error)
	// sample is a message with every field set, for the seed.
	sample func() proto.Message
}

func codecOf[K any, V proto.Message](t stream.Topic[K, V]) valueCodec {
	return valueCodec{
		spec: t.TopicSpec,
		decode: func(b []byte) (proto.Message, error) {
			v, err := t.Value.Decode(b)
			return v, err
		},
		encode: func(m proto.Message) ([]byte, error) { return t.Value.Append(nil, m.(V)) },
		sample: func() proto.Message {
			var v V
			m := v.ProtoReflect().New()
			fill(m, 0)
			return m.Interface()
		},
	}
}

// valueCodecs lists every topic of the catalogue with its value codec;
// TestValueCodecsCoverCatalogue keeps it complete.
func valueCodecs() []valueCodec {
	return []valueCodec{
		codecOf(Interactions()), codecOf(UserProfiles()), codecOf(UserCandidates()), codecOf(ItemFactors()),
		codecOf(Models()), codecOf(RecOutcomes()), codecOf(CartRequests()), codecOf(Carts()),
		codecOf(SyncRequests()), codecOf(SyncDone()), codecOf(Listings()), codecOf(Sellers()),
		codecOf(Releases()), codecOf(Masters()), codecOf(ReleaseStats()), codecOf(FxRates()),
		codecOf(ScrapeRequests()), codecOf(ScrapeDone()), codecOf(RequestStatus()), codecOf(DeadLetters()),
	}
}

// A topic added to the catalogue without a line in valueCodecs would go
// unfuzzed; each codec decodes the message its spec names.
func TestValueCodecsCoverCatalogue(t *testing.T) {
	codecs := map[string]valueCodec{}
	for _, c := range valueCodecs() {
		codecs[c.spec.Name] = c
	}
	for _, spec := range Catalogue() {
		c, ok := codecs[spec.Name]
		if !ok {
			t.Errorf("topic %s has no entry in valueCodecs", spec.Name)
			continue
		}
		if got := string(c.sample().ProtoReflect().Descriptor().FullName()); got != spec.ValueType {
			t.Errorf("topic %s: codec of %s, spec says %s", spec.Name, got, spec.ValueType)
		}
		delete(codecs, spec.Name)
	}
	for name := range codecs {
		t.Errorf("valueCodecs has %s, which is not in the catalogue", name)
	}
}

// fill sets every field of m to a value that is not the default, nested
// messages to two levels: a valid message that exercises every field of
// the decoder.
func fill(m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.ContainingOneof() != nil && m.WhichOneof(fd.ContainingOneof()) != nil {
			continue // one member of each oneof
		}
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range 2 {
				if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
					if depth < 2 {
						e := l.NewElement()
						fill(e.Message(), depth+1)
						l.Append(e)
					}
					continue
				}
				l.Append(scalar(fd, i))
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			k := scalar(fd.MapKey(), i).MapKey()
			if vd := fd.MapValue(); vd.Kind() == protoreflect.MessageKind {
				if depth < 2 {
					v := mp.NewValue()
					fill(v.Message(), depth+1)
					mp.Set(k, v)
				}
			} else {
				mp.Set(k, scalar(vd, i))
			}
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			if depth < 2 {
				fill(m.Mutable(fd).Message(), depth+1)
			}
		default:
			m.Set(fd, scalar(fd, i))
		}
	}
}

// scalar is a non-default value of a scalar field, varied by i.
func scalar(fd protoreflect.FieldDescriptor, i int) protoreflect.Value {
	n := int64(i + 1)
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vals.Get(vals.Len() - 1).Number())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(-n * 1000))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(n * 1_700_000_000_000)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(n * 1000))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(n) << 40)
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(n) + 0.5)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(float64(n) * 1.25)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString("v" + string(rune('a'+i%26)) + " é")
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{0, byte(i), 0xff})
	}
	return fd.Default()
}

// FuzzTopicValues decodes arbitrary bytes with the value codec of every
// topic (index picks the topic; the seeds are a full message of each).
// Decoding must not panic; what decodes re-encodes, and the encoding
// decodes to the same message and encodes to the same bytes (the codec
// is deterministic).
func FuzzTopicValues(f *testing.F) {
	codecs := valueCodecs()
	for i, c := range codecs {
		b, err := c.encode(c.sample())
		if err != nil {
			f.Fatalf("%s: %v", c.spec.Name, err)
		}
		f.Add(uint8(i), b)
	}
	f.Add(uint8(0), []byte{0x0a, 0x03, 0xff, 0xfe, 0xfd}) // invalid UTF-8 in a string
	f.Add(uint8(3), []byte{0xf8, 0x07, 0x01})             // an unknown field

	f.Fuzz(func(t *testing.T, index uint8, data []byte) {
		c := codecs[int(index)%len(codecs)]
		m, err := c.decode(data)
		if err != nil {
			return // the runtime dead-letters it
		}
		b1, err := c.encode(m)
		if err != nil {
			t.Fatalf("%s: a decoded value does not encode: %v", c.spec.Name, err)
		}
		m2, err := c.decode(b1)
		if err != nil {
			t.Fatalf("%s: a value it encoded does not decode: %v", c.spec.Name, err)
		}
		// proto.Equal holds NaN unequal to itself; the bytes then speak.
		if !proto.Equal(m, m2) && !hasNaN(m.ProtoReflect()) {
			t.Fatalf("%s: decode, encode, decode changed the value:\n%v\n%v", c.spec.Name, m, m2)
		}
		b2, err := c.encode(m2)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("%s: encoding is not stable (%v):\n%x\n%x", c.spec.Name, err, b1, b2)
		}
	})
}

// hasNaN reports whether a float field of m, at any depth, is NaN.
func hasNaN(m protoreflect.Message) bool {
	nan := func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch fd.Kind() {
		case protoreflect.FloatKind, protoreflect.DoubleKind:
			return math.IsNaN(v.Float())
		case protoreflect.MessageKind, protoreflect.GroupKind:
			return hasNaN(v.Message())
		}
		return false
	}
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			for i := range v.List().Len() {
				found = found || nan(fd, v.List().Get(i))
			}
		case fd.IsMap():
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				found = found || nan(fd.MapValue(), mv)
				return !found
			})
		default:
			found = nan(fd, v)
		}
		return !found
	})
	return found
}
