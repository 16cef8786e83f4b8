package recsys

// Index assigns dense int32 indices to external ids (release ids, user
// names) in first-seen order, the bridge between catalogue ids and the
// matrix rows/columns models work on.
type Index[K comparable] struct {
	ids []K
	pos map[K]int32
}

// NewIndex returns an empty index.
func NewIndex[K comparable]() *Index[K] { return &Index[K]{pos: map[K]int32{}} }

// Add returns id's index, assigning the next one if id is new.
func (x *Index[K]) Add(id K) int32 {
	if p, ok := x.pos[id]; ok {
		return p
	}
	p := int32(len(x.ids))
	x.pos[id] = p
	x.ids = append(x.ids, id)
	return p
}

// Lookup returns id's index if known.
func (x *Index[K]) Lookup(id K) (int32, bool) {
	p, ok := x.pos[id]
	return p, ok
}

// ID returns the external id of index p, false if p is out of range.
func (x *Index[K]) ID(p int32) (K, bool) {
	if p < 0 || int(p) >= len(x.ids) {
		var zero K
		return zero, false
	}
	return x.ids[p], true
}

// IDs returns all ids in index order (shared, do not modify).
func (x *Index[K]) IDs() []K { return x.ids }

// Len is the number of ids.
func (x *Index[K]) Len() int { return len(x.ids) }
