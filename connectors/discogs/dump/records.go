package dump

import (
	"errors"
	"math"

	pb "github.com/cratestream/cratestream/schemas/cratestreamv1"
)

// NextRelease returns the next release of a releases dump. At the end it
// returns io.EOF. A *RecordError is one bad record: log or dead-letter it
// and call again. Any other error is fatal and returned again by every
// later call.
func (d *Decoder) NextRelease() (*pb.Release, error) {
	if d.k.rec != "release" {
		return nil, errors.New("dump: NextRelease on a masters decoder")
	}
	if err := d.startRecord(); err != nil {
		return nil, err
	}
	id, reason := d.parseID()
	r := &pb.Release{}
	if err := d.release(r); err != nil {
		return nil, d.recordErr(err)
	}
	if err := d.finish(id, reason); err != nil {
		return nil, err
	}
	r.ReleaseId, r.EventId, r.EventTimeMs = id, eventID(d.k.idPrefix, id), d.cfg.eventMs
	return r, nil
}

// NextMaster returns the next master of a masters dump; see NextRelease.
func (d *Decoder) NextMaster() (*pb.Master, error) {
	if d.k.rec != "master" {
		return nil, errors.New("dump: NextMaster on a releases decoder")
	}
	if err := d.startRecord(); err != nil {
		return nil, err
	}
	id, reason := d.parseID()
	m := &pb.Master{}
	if err := d.master(m); err != nil {
		return nil, d.recordErr(err)
	}
	if err := d.finish(id, reason); err != nil {
		return nil, err
	}
	m.MasterId, m.EventId, m.EventTimeMs = id, eventID(d.k.idPrefix, id), d.cfg.eventMs
	return m, nil
}

// child moves to the next child element of parent, whose start tag was
// read: true with the child's start tag as the current token, false once
// parent's end tag is read. Character data between children is ignored.
func (d *Decoder) child(parent string) (bool, error) {
	s := &d.s
	for {
		if err := s.next(); err != nil {
			return false, err
		}
		switch s.kind {
		case tokStart:
			if string(s.name) == d.k.rec {
				return false, s.syntax("<%s> inside a record", s.name)
			}
			return true, nil
		case tokEnd:
			if string(s.name) != parent {
				return false, s.syntax("</%s> closes <%s>", s.name, parent)
			}
			return false, nil
		case tokEOF:
			return false, errUnexpectedEOF
		}
	}
}

func (d *Decoder) release(r *pb.Release) error {
	s := &d.s
	for a := s.attrs; ; {
		name, val, rest, err := nextAttr(a)
		if err != nil || name == nil {
			break // a malformed attribute is reported by parseID
		}
		if string(name) == "status" {
			if r.Status, err = d.attrString(name, val); err != nil {
				return err
			}
		}
		a = rest
	}
	if s.selfClose {
		return nil
	}
	for {
		ok, err := d.child("release")
		if !ok || err != nil {
			return err
		}
		switch string(s.name) {
		case "title":
			r.Title, err = d.text("title")
		case "artists":
			r.Artists, err = d.artists(r.Artists)
		case "labels":
			r.Labels, err = d.labels(r.Labels)
		case "formats":
			r.Formats, err = d.formats(r.Formats)
		case "genres":
			r.Genres, err = d.list("genres", "genre", r.Genres)
		case "styles":
			r.Styles, err = d.list("styles", "style", r.Styles)
		case "country":
			r.Country, err = d.text("country")
		case "released":
			r.Released, err = d.text("released")
			r.Year = yearOf(r.Released)
		case "data_quality":
			r.DataQuality, err = d.text("data_quality")
		case "master_id":
			r.IsMainRelease = false
			for a := s.attrs; ; {
				name, val, rest, aerr := nextAttr(a)
				if aerr != nil {
					return s.syntax("<master_id>: %v", aerr)
				}
				if name == nil {
					break
				}
				if string(name) == "is_main_release" {
					r.IsMainRelease = string(trimSpace(val)) == "true"
				}
				a = rest
			}
			r.MasterId, err = d.int("master_id")
		default:
			// images, extraartists, notes, tracklist, identifiers,
			// videos, companies, series and whatever comes next.
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
}

func (d *Decoder) master(m *pb.Master) error {
	s := &d.s
	if s.selfClose {
		return nil
	}
	for {
		ok, err := d.child("master")
		if !ok || err != nil {
			return err
		}
		switch string(s.name) {
		case "main_release":
			m.MainRelease, err = d.int("main_release")
		case "title":
			m.Title, err = d.text("title")
		case "year":
			var y int64
			y, err = d.int("year")
			m.Year = clamp32(y)
		case "artists":
			m.Artists, err = d.artists(m.Artists)
		case "genres":
			m.Genres, err = d.list("genres", "genre", m.Genres)
		case "styles":
			m.Styles, err = d.list("styles", "style", m.Styles)
		case "data_quality":
			m.DataQuality, err = d.text("data_quality")
		default: // images, videos, notes
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
}

// artists reads <artists><artist><id/><name/><anv/><join/>...</artist>.
func (d *Decoder) artists(dst []*pb.ArtistCredit) ([]*pb.ArtistCredit, error) {
	s := &d.s
	if s.selfClose {
		return dst, nil
	}
	for {
		ok, err := d.child("artists")
		if !ok || err != nil {
			return dst, err
		}
		if string(s.name) != "artist" {
			if err := d.skip(); err != nil {
				return dst, err
			}
			continue
		}
		a := &pb.ArtistCredit{}
		dst = append(dst, a)
		if s.selfClose {
			continue
		}
		for {
			ok, err := d.child("artist")
			if err != nil {
				return dst, err
			}
			if !ok {
				break
			}
			switch string(s.name) {
			case "id":
				a.ArtistId, err = d.int("id")
			case "name":
				a.Name, err = d.text("name")
			case "anv":
				a.Anv, err = d.text("anv")
			case "join":
				a.Join, err = d.text("join")
			default: // role, tracks
				err = d.skip()
			}
			if err != nil {
				return dst, err
			}
		}
	}
}

// labels reads <labels><label name="" catno="" id=""/>; the 2017 schema
// has no id.
func (d *Decoder) labels(dst []*pb.LabelCredit) ([]*pb.LabelCredit, error) {
	s := &d.s
	if s.selfClose {
		return dst, nil
	}
	for {
		ok, err := d.child("labels")
		if !ok || err != nil {
			return dst, err
		}
		if string(s.name) == "label" {
			l := &pb.LabelCredit{}
			for a := s.attrs; ; {
				name, val, rest, err := nextAttr(a)
				if err != nil {
					return dst, s.syntax("<label>: %v", err)
				}
				if name == nil {
					break
				}
				switch string(name) {
				case "name":
					l.Name, err = d.attrString(name, val)
				case "catno":
					l.Catno, err = d.attrString(name, val)
				case "id":
					l.LabelId, _ = parseUint(trimSpace(val))
				}
				if err != nil {
					return dst, err
				}
				a = rest
			}
			dst = append(dst, l)
		}
		if err := d.skip(); err != nil {
			return dst, err
		}
	}
}

// formats reads <formats><format name="" qty="" text=""><descriptions>
// <description/>...
func (d *Decoder) formats(dst []*pb.Format) ([]*pb.Format, error) {
	s := &d.s
	if s.selfClose {
		return dst, nil
	}
	for {
		ok, err := d.child("formats")
		if !ok || err != nil {
			return dst, err
		}
		if string(s.name) != "format" {
			if err := d.skip(); err != nil {
				return dst, err
			}
			continue
		}
		f := &pb.Format{}
		dst = append(dst, f)
		for a := s.attrs; ; {
			name, val, rest, err := nextAttr(a)
			if err != nil {
				return dst, s.syntax("<format>: %v", err)
			}
			if name == nil {
				break
			}
			switch string(name) {
			case "name":
				f.Name, err = d.attrString(name, val)
			case "text":
				f.Text, err = d.attrString(name, val)
			case "qty":
				q, _ := parseUint(trimSpace(val))
				f.Qty = clamp32(q)
			}
			if err != nil {
				return dst, err
			}
			a = rest
		}
		if s.selfClose {
			continue
		}
		for {
			ok, err := d.child("format")
			if err != nil {
				return dst, err
			}
			if !ok {
				break
			}
			if string(s.name) == "descriptions" {
				f.Descriptions, err = d.list("descriptions", "description", f.Descriptions)
			} else {
				err = d.skip()
			}
			if err != nil {
				return dst, err
			}
		}
	}
}

// list reads <parent><item>text</item>...</parent>, dropping empty items.
func (d *Decoder) list(parent, item string, dst []string) ([]string, error) {
	s := &d.s
	if s.selfClose {
		return dst, nil
	}
	for {
		ok, err := d.child(parent)
		if !ok || err != nil {
			return dst, err
		}
		if string(s.name) != item {
			if err := d.skip(); err != nil {
				return dst, err
			}
			continue
		}
		v, err := d.text(item)
		if err != nil {
			return dst, err
		}
		if v != "" {
			dst = append(dst, v)
		}
	}
}

// yearOf is the year of a released date ("1999-03-00", "1999"), 0 when
// unknown.
func yearOf(released string) int32 {
	if len(released) < 4 || (len(released) > 4 && released[4] != '-') {
		return 0
	}
	y, ok := parseUint([]byte(released[:4]))
	if !ok {
		return 0
	}
	return int32(y)
}

func clamp32(n int64) int32 {
	if n > math.MaxInt32 {
		return 0
	}
	return int32(n)
}
