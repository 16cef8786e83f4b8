// Package marketplace parses and renders Discogs marketplace release pages
// (https://www.discogs.com/sell/release/<id>): the listings of one release,
// up to 250 rows per page.
//
// Parse reads a full page or just its table.mpitems fragment and returns
// the listings and sellers as cratestream.v1 records. It is strict on
// purpose: a page that has rows but whose markup no longer matches (a price
// span renamed, the seller block gone) is an error naming the row and the
// field, never an empty result, so that a Discogs redesign shows up as
// failed scrapes instead of releases that silently went out of stock. An
// empty listings table is a valid page with no listings.
//
// Render writes a page in the same markup as the real desktop page, so
// that the fake marketplace (connectors/discogs/fakemarket) serves pages a
// scraper cannot tell from Discogs' own, and so that Parse(Render(x)) == x
// can be tested for every currency, grade and shipping case.
//
// # What is read from a row
//
//   - listing id: the /sell/item/<id> link of td.item_description (or the
//     cart button's data-item-id);
//   - price: span.price of td.item_price, from its data-currency and
//     data-pricevalue attributes when present, else from its text in any
//     format Discogs prints ("$9,000.00", "€11.00", "¥19,800", "CA$18.00",
//     "CHF325.59", "SEK 50.00", ...);
//   - shipping: the text of .item_shipping: "+€14.00" is PRICED (in any
//     currency, not necessarily the item's), "+no extra shipping" and
//     "+free shipping" are FREE with a zero amount in the item's currency,
//     and a span with no amount (only a "shipping" button) or no span at all
//     is UNAVAILABLE with shipping unset;
//   - media and sleeve grade from p.item_condition; the sleeve grade is
//     optional (SLEEVE_GRADE_UNSPECIFIED when the seller gave none);
//   - seller: the text of the seller link (/seller/<name>/...), the rating
//     percent and "N ratings" count, or "New seller" (has_rating=false),
//     "Ships From:", and data-seller-id when the row carries one;
//   - available=false when the row says "Unavailable in <country>".
//
// # JSON lines
//
// WriteJSONLines prints one JSON object per listing per line, for people
// and shell pipelines rather than for the stream (which carries the
// protobuf records). Every line has exactly these keys, in this order:
//
//	listing_id            number   Discogs listing (item) id
//	release_id            number   Discogs release id
//	seller                string   seller username
//	seller_rating         number   positive feedback percent (99.6), null for a new seller
//	seller_ratings_count  number   number of ratings (0 for a new seller)
//	media_condition       string   Discogs grade text, e.g. "Very Good Plus (VG+)"
//	sleeve_condition      string   grade text, "Generic", "Not Graded", "No Cover"; null when the seller gave none
//	price                 object   {"amount_minor": 900000, "currency": "USD"}
//	shipping              object   same shape; amount 0 for free shipping; null when unavailable
//	ships_from            string   country as Discogs prints it ("United States")
//	available             bool     false when Discogs says "Unavailable in <country>"
//
// Amounts are integer minor units of the ISO 4217 currency (cents; yen for
// JPY), never floats.
package marketplace
