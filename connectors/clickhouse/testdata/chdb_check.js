// Runs the migrations (twice) and the dashboard queries' SQL, with values
// bound by hand, on a current ClickHouse engine embedded by the npm package
// chdb (libchdb.so, ClickHouse 26.x), on the hand-built market of
// queries_test.go, and compares the results. CI has only 18.16, which the Go
// tests cover; this is the manual check for production's current versions:
//
//   cd "$(mktemp -d)" && npm install chdb@3.4.0 && node /path/to/chdb_check.js
//
// (The package is ~570 MB.) Set SCHEMA_DIR to the schemas/clickhouse folder
// when not run from this repository's connectors/clickhouse/testdata.
const { Session } = require(require.resolve('chdb', { paths: [process.cwd()] }));
const fs = require('fs');
const dir = process.env.SCHEMA_DIR || require('path').join(__dirname, '..', '..', '..', 'schemas', 'clickhouse');
const s = new Session();
const q = (sql, fmt = 'TSV') => s.query(sql, fmt);
console.log('version', q('SELECT version()').trim());
const mig = `CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, checksum String, applied_at DateTime) ENGINE = ReplacingMergeTree ORDER BY version`;
for (let round = 0; round < 2; round++) {
  q(mig);
  for (const f of fs.readdirSync(dir).filter(f => f.endsWith('.sql')).sort()) {
    const text = fs.readFileSync(dir + '/' + f, 'utf8').split('\n').filter(l => !l.trim().startsWith('--')).join('\n');
    for (const st of text.split(';')) {
      if (st.trim()) q(st);
    }
  }
}
console.log('tables', q("SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name").trim().split('\n').join(','));
const L = (id, rel, seller, price, cur, eur, media, ships, avail, rating, v, del = 0) =>
  `(${id}, ${rel}, '${seller}', 0, ${price}, '${cur}', ${eur}, 300, 1, ${media}, ${media}, '${ships}', ${avail ? 1 : 0}, ${rating}, ${1700000000 + v}, ${del}, ${v})`;
const cols = 'listing_id, release_id, seller, seller_id, price_minor, currency, price_eur_minor, shipping_minor, shipping_state, media_grade, sleeve_grade, ships_from, available, seller_rating, seen_at, deleted, version';
q(`INSERT INTO listings (${cols}) VALUES ` + [
  L(1, 100, 'alice', 1000, 'EUR', 1000, 2, 'DE', true, 99.5, 1), L(2, 100, 'bob', 1500, 'USD', 1417, 3, 'US', true, 98.7, 1),
  L(3, 100, 'carol', 500, 'GBP', 580, 4, 'UK', true, 100, 2), L(4, 100, 'dave', 700, 'EUR', 700, 1, 'DE', true, 99, 3),
  L(5, 100, 'erin', 2000, 'JPY', 0, 2, 'JP', true, 99, 4), L(6, 100, 'frank', 1200, 'EUR', 1200, 2, 'FR', false, 99.9, 2),
  L(7, 200, 'alice', 3000, 'EUR', 3000, 3, 'DE', true, 99.5, 1), L(8, 200, 'bob', 1400, 'EUR', 1400, 2, 'US', true, 98.7, 1),
  L(9, 200, 'carol', 100, 'EUR', 100, 6, 'UK', true, 100, 1), L(10, 300, 'alice', 800, 'EUR', 800, 2, 'DE', true, 99.5, 1),
  L(11, 300, 'bob', 600, 'EUR', 600, 2, 'US', true, 98.7, 1)].join(','));
q(`INSERT INTO listings (${cols}) VALUES ` + [
  L(2, 100, 'bob', 900, 'USD', 850, 3, 'US', true, 98.7, 5), L(4, 100, '', 0, '', 0, 0, '', false, 0, 9, 1),
  L(8, 200, 'bob', 4000, 'EUR', 4000, 2, 'US', true, 98.7, 3), L(11, 300, 'bob', 600, 'EUR', 600, 5, 'US', true, 98.7, 2),
  L(12, 100, 'alice', 900, 'EUR', 900, 2, 'DE', true, 99.5, 1), L(13, 200, 'gina', 50, 'EUR', 50, 2, 'NL', true, 90, 1)].join(','));
q(`INSERT INTO listings (${cols}) VALUES ` + L(1, 100, 'alice', 1000, 'EUR', 1000, 2, 'DE', true, 99.5, 1));
q(`INSERT INTO user_wantlist (user_id, release_id, deleted, updated_at, version) VALUES ('u1',300,0,0,5),('u1',400,0,0,5),('u1',100,0,0,10),('u1',200,0,0,10),('u1',300,1,0,10),('u2',100,0,0,3),('u2',0,1,0,7)`);

let failed = false;
const check = (name, got, want) => {
  if (got.trim() !== want.trim()) failed = true; console.log((got.trim() === want.trim() ? 'OK   ' : 'FAIL ') + name + (got.trim() === want.trim() ? '' : '\n got:\n' + got + '\n want:\n' + want)); };
check('overview by grade', q(`SELECT media_grade, sum(c) FROM (SELECT media_grade, ships_from, currency, countIf(deleted = 0) AS c
FROM listings FINAL
GROUP BY media_grade, ships_from, currency) GROUP BY media_grade HAVING sum(c) > 0 ORDER BY 1`), '2\t7\n3\t2\n4\t1\n5\t1\n6\t1');
check('distribution', q(`
SELECT arrayMap(x -> toInt64(x), quantilesExact(0.1, 0.25, 0.5, 0.75, 0.9)(p)), count(), min(p), max(p)
FROM (
    SELECT argMax(price_eur_minor, version) AS p, argMax(deleted, version) AS d
    FROM listings
    PREWHERE release_id = 100
    GROUP BY release_id, listing_id
)
WHERE d = 0 AND p > 0`), '[580,850,900,1000,1200]\t5\t580\t1200');
q(`CREATE TABLE cheapest_releases (id Int64) ENGINE = Memory`);
q(`INSERT INTO cheapest_releases VALUES (100),(200),(300)`);
check('cheapest phase A', q(`
SELECT listing_id, release_id, version
FROM listings
PREWHERE release_id IN cheapest_releases
WHERE deleted = 0 AND available = 1 AND price_eur_minor > 0 AND price_eur_minor <= 1500 AND media_grade BETWEEN 1 AND 3 AND seller_rating >= toFloat32(98.7) AND ships_from IN ('DE', 'US')
ORDER BY price_eur_minor, listing_id, version DESC
LIMIT 26`), '11\t300\t1\n4\t100\t3\n10\t300\t1\n2\t100\t5\n12\t100\t1\n1\t100\t1\n1\t100\t1\n8\t200\t1\n2\t100\t1');
check('cheapest phase B', q(`
SELECT listing_id, release_id, version, deleted, seller, price_minor, currency, price_eur_minor, shipping_minor,
       shipping_state, media_grade, sleeve_grade, ships_from, seller_rating, seen_at
FROM listings
PREWHERE release_id IN (300, 100, 200) AND listing_id IN (10, 11, 2, 12, 1, 8)
ORDER BY release_id, listing_id, version DESC
LIMIT 1 BY release_id, listing_id`).split('\n').map(l => l.split('\t').slice(0, 4).join(' ')).join('\n'),
'1 100 1 0\n2 100 5 0\n12 100 1 0\n8 200 3 0\n10 300 1 0\n11 300 2 0');
check('sellers for wantlist', q(`
SELECT s, count() AS releases, sum(min_p) AS total, arraySort(groupArray(release_id))
FROM (
    SELECT s, release_id, min(p) AS min_p
    FROM (
        SELECT release_id, argMax(seller, version) AS s, argMax(price_eur_minor, version) AS p,
               argMax(deleted, version) AS d, argMax(available, version) AS a
        FROM listings
        PREWHERE release_id IN (
            SELECT release_id FROM user_wantlist
            WHERE user_id = 'u1' AND deleted = 0
              AND version = (SELECT max(version) FROM user_wantlist WHERE user_id = 'u1'))
        GROUP BY release_id, listing_id
    )
    WHERE d = 0 AND a = 1 AND p > 0
    GROUP BY s, release_id
)
GROUP BY s
ORDER BY releases DESC, total ASC, s ASC
LIMIT 100`), 'carol\t2\t680\t[100,200]\nalice\t2\t3900\t[100,200]\nbob\t2\t4850\t[100,200]\ngina\t1\t50\t[200]');
check('tombstone lookup', q(`SELECT listing_id, argMax(release_id, version) FROM listings PREWHERE listing_id IN (4, 11, 99) AND release_id != 0 GROUP BY listing_id ORDER BY 1`), '4\t100\n11\t300');
check('migrations distinct', q(`SELECT count() FROM (SELECT DISTINCT version, checksum FROM schema_migrations)`), '0');
s.cleanup();
process.exit(failed ? 1 : 0);
