#!/usr/bin/env bash
# make bench: Bulwark's data plane against named baselines, measured in one
# run on a ~1 GiB finance database and printed as ratios. Not part of make
# test: it needs ~4 GiB of disk and a few minutes.
#
#   full backup      vs the seed's method (sqlite3 .backup + gzip -6) and vs cp
#   stored size      vs the database and vs the seed's .gz
#   restore          vs cp + fsync
#   peak RSS         of the backup and the restore process
#   writer latency   max commit latency of a WAL writer (separate process)
#                    during a Bulwark backup, vs the same writer alone and
#                    during the seed's sqlite3 .backup
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/bin}
OUT=${BENCH_OUT:-$PWD/bench/out}
SIZE=${BENCH_SIZE:-1073741824}
DB=$OUT/finance-$SIZE.db
mkdir -p "$OUT"

command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3; }
command -v gzip >/dev/null || { apt-get update -qq && apt-get install -y -qq gzip; }
command -v bc >/dev/null || { apt-get update -qq && apt-get install -y -qq bc; }
command -v restic >/dev/null || { apt-get update -qq && apt-get install -y -qq restic; }
go build -o "$BIN/bulwark-bench" ./bench/bulwark-bench
go build -o "$BIN/finance-gen" ./demodb/cmd/finance-gen
go build -o "$BIN/finance-writer" ./demodb/cmd/finance-writer

if [ ! -f "$DB" ]; then
  echo "generating a $SIZE-byte finance database (once; kept in $OUT)..." >&2
  "$BIN/finance-gen" -db "$DB" -size "$SIZE" >/dev/null
fi
# Every timed step starts from a settled disk: data still being flushed
# from the previous step would be charged to the next one.
warm() { cat "$1" >/dev/null; sync; }
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
json() { sed -n "s/.*\"$2\":\([0-9.e+]*\).*/\1/p" "$1"; }
id=$(date -u +%Y%m%dT%H%M%SZ)-$(printf '%08x' $RANDOM$RANDOM | cut -c1-8)
store=$OUT/store; key=$OUT/bench.key
rm -rf "$store" "$OUT"/copy.db "$OUT"/seed.db "$OUT"/seed.db.gz "$OUT"/restored.db*

# Baseline: cp (page cache warm, no fsync: the cheapest possible copy).
warm "$DB"; t0=$(now); cp "$DB" "$OUT/copy.db"; t1=$(now); cp_s=$(secs "$t0" "$t1")
# Baseline: cp + fsync, what a restore must at least do.
rm -f "$OUT/copy.db"; warm "$DB"; t0=$(now); cp "$DB" "$OUT/copy.db"; sync "$OUT/copy.db"; t1=$(now); cpsync_s=$(secs "$t0" "$t1")
rm -f "$OUT/copy.db"
# Baseline: the seed's method, sqlite3 .backup then gzip -6.
warm "$DB"; t0=$(now); sqlite3 "$DB" ".backup '$OUT/seed.db'"; gzip -6 "$OUT/seed.db"; t1=$(now); seed_s=$(secs "$t0" "$t1")
seed_bytes=$(stat -c %s "$OUT/seed.db.gz"); rm -f "$OUT/seed.db.gz"

# Bulwark full backup.
warm "$DB"
"$BIN/bulwark-bench" backup -db "$DB" -store "$store" -key "$key" -id "$id" > "$OUT/backup.json"
b_s=$(json "$OUT/backup.json" seconds); b_img=$(json "$OUT/backup.json" image_bytes)
b_stored=$(json "$OUT/backup.json" stored_bytes); b_rss=$(json "$OUT/backup.json" peak_rss_bytes)

# Bulwark restore (download, decrypt, decompress, write, fsync, hash check, rename).
sync
"$BIN/bulwark-bench" restore -store "$store" -key "$key" -id "$id" -to "$OUT/restored.db" > "$OUT/restore.json"
r_s=$(json "$OUT/restore.json" seconds); r_rss=$(json "$OUT/restore.json" peak_rss_bytes)
cmp -s "$DB" "$OUT/restored.db" && same=identical || same="differs (the live file has changed since)"
rm -f "$OUT/restored.db"*

# Writer latency: a WAL writer in its own process, committing every ms.
writer() { "$BIN/finance-writer" -db "$DB" -duration "$1" -pause 1ms; }
lat() { sed -n 's/.*"max_commit_latency_ns":\([0-9]*\).*/\1/p' "$1"; }
commits() { sed -n 's/.*"commits":\([0-9]*\).*/\1/p' "$1"; }
dur=$(printf '%.0f' "$(echo "$b_s + 3" | bc -l)")s
writer "$dur" > "$OUT/writer-alone.json"
writer "$dur" > "$OUT/writer-bulwark.json" &
wp=$!; sleep 1
"$BIN/bulwark-bench" backup -db "$DB" -store "$store" -key "$key" -id "${id%-*}-0000beef" > "$OUT/backup-live.json"
wait $wp
seed_dur=$(printf '%.0f' "$(echo "$seed_s + 3" | bc -l)")s
writer "$seed_dur" > "$OUT/writer-seed.json" &
wp=$!; sleep 1
timeout 120 sqlite3 "$DB" ".backup '$OUT/seed-live.db'" || echo "(sqlite3 .backup did not finish within 120 s under the writer)" >&2
wait $wp; rm -f "$OUT/seed-live.db"
rm -rf "$store"

# Incremental backups (issue #3): update a random 1% of expense rows, then
# Bulwark's incremental vs restic's second backup of the same file; then a
# chain of a full and 6 incrementals, restored, vs the full alone.
touch1pct() { sqlite3 "$DB" "UPDATE expenses SET amount_pence = amount_pence + 1 WHERE abs(random()) % 100 = 0; PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null; }
export RESTIC_REPOSITORY=$OUT/restic RESTIC_PASSWORD=bench-only-not-a-secret
rm -rf "$RESTIC_REPOSITORY" "$store"
restic init -q >/dev/null
warm "$DB"; restic backup -q "$DB" >/dev/null
"$BIN/bulwark-bench" backup -db "$DB" -store "$store" -key "$key" > "$OUT/chain-full.json"
full_id=$(sed -n 's/.*"backup_id":"\([^"]*\)".*/\1/p' "$OUT/chain-full.json")
touch1pct
warm "$DB"
repo_before=$(du -sb "$RESTIC_REPOSITORY" | cut -f1)
t0=$(now); restic backup -q "$DB" >/dev/null; t1=$(now); restic_s=$(secs "$t0" "$t1")
restic_added=$(( $(du -sb "$RESTIC_REPOSITORY" | cut -f1) - repo_before ))
warm "$DB"
# Bytes added are counted like restic's: the growth of the store, so the
# page index, key envelope and manifest count too, not only the chunks.
store_before=$(du -sb "$store" | cut -f1)
"$BIN/bulwark-bench" backup -type incremental -db "$DB" -store "$store" -key "$key" > "$OUT/incr1.json"
i_s=$(json "$OUT/incr1.json" seconds); i_stored=$(( $(du -sb "$store" | cut -f1) - store_before ))
i_changed=$(json "$OUT/incr1.json" changed_pages); i_pages=$(json "$OUT/incr1.json" page_count)
for n in 2 3 4 5 6; do
  touch1pct
  "$BIN/bulwark-bench" backup -type incremental -db "$DB" -store "$store" -key "$key" > "$OUT/incr$n.json"
done
last_id=$(sed -n 's/.*"backup_id":"\([^"]*\)".*/\1/p' "$OUT/incr6.json")
# Both restores end in an fsync of 1 GiB, whose time on this VM varies by
# ±30% run to run: each is run three times, alternating, and the medians
# are compared.
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
rf=(); rc=()
for n in 1 2 3; do
  rm -f "$OUT"/restored.db*; sync
  "$BIN/bulwark-bench" restore -store "$store" -key "$key" -id "$full_id" -to "$OUT/restored.db" > "$OUT/restore-full.json"
  rf+=("$(json "$OUT/restore-full.json" seconds)")
  rm -f "$OUT"/restored.db*; sync
  "$BIN/bulwark-bench" restore -store "$store" -key "$key" -id "$last_id" -to "$OUT/restored.db" > "$OUT/restore-chain.json"
  rc+=("$(json "$OUT/restore-chain.json" seconds)")
done
cmp -s "$DB" "$OUT/restored.db" && chain_same=identical || chain_same=DIFFERS
rm -f "$OUT"/restored.db*
rf_s=$(median "${rf[@]}"); rc_s=$(median "${rc[@]}")
# The issue sizes its byte target for "about 15% of pages": on this
# database 1% of the rows touch a quarter of the pages (43 rows a page), so
# the same measurement is also made at the row share that touches ~15%.
sqlite3 "$DB" "UPDATE expenses SET amount_pence = amount_pence + 1 WHERE abs(random()) % 200 = 0; PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
warm "$DB"
store_before=$(du -sb "$store" | cut -f1)
"$BIN/bulwark-bench" backup -type incremental -db "$DB" -store "$store" -key "$key" > "$OUT/incr-half.json"
h_s=$(json "$OUT/incr-half.json" seconds); h_stored=$(( $(du -sb "$store" | cut -f1) - store_before ))
h_changed=$(json "$OUT/incr-half.json" changed_pages); h_pages=$(json "$OUT/incr-half.json" page_count)
rm -rf "$store" "$RESTIC_REPOSITORY"

ms() { echo "scale=1; $1 / 1000000" | bc -l; }
mib() { echo "scale=1; $1 / 1048576" | bc -l; }
r() { echo "scale=2; $1 / $2" | bc -l; }
cat <<REPORT

Bulwark make bench — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, database $(mib "$b_img") MiB
-----------------------------------------------------------------------------------------------
full backup          $(printf '%6.2f' "$b_s") s   seed method (.backup+gzip -6) $(printf '%6.2f' "$seed_s") s → $(r "$seed_s" "$b_s")× faster   (target ≥ 10×, ≤ 4 s)
                                 cp (no fsync)                 $(printf '%6.2f' "$cp_s") s → $(r "$b_s" "$cp_s")× cp's time
stored size       $(printf '%7.1f' "$(mib "$b_stored")") MiB   $(r "$b_stored" "$b_img") of the database; seed's .gz $(mib "$seed_bytes") MiB → $(r "$b_stored" "$seed_bytes")× its size   (target ≤ 420 MiB)
restore              $(printf '%6.2f' "$r_s") s   cp + fsync $(printf '%6.2f' "$cpsync_s") s → $(r "$r_s" "$cpsync_s")× its time   (target ≤ 2×); restored file $same
peak RSS          backup $(mib "$b_rss") MiB, restore $(mib "$r_rss") MiB   (target ≤ 128 MiB)
writer max commit latency (WAL, other process, 1 ms between commits)
                  during Bulwark backup $(ms "$(lat "$OUT/writer-bulwark.json")") ms ($(commits "$OUT/writer-bulwark.json") commits)   (target ≤ 50 ms)
                  writer alone          $(ms "$(lat "$OUT/writer-alone.json")") ms ($(commits "$OUT/writer-alone.json") commits)
                  during sqlite3 .backup $(ms "$(lat "$OUT/writer-seed.json")") ms ($(commits "$OUT/writer-seed.json") commits)
incremental after updating a random 1% of expense rows ($i_changed of $i_pages pages changed, $(r "$(( i_changed * 100 ))" "$i_pages")%)
                  Bulwark incremental $(printf '%6.2f' "$i_s") s, $(mib "$i_stored") MiB added, $(echo "scale=0; $i_stored / $i_changed" | bc) bytes per changed page   (target ≤ 1.5 s, ≤ 80 MiB)
                  restic 2nd backup   $(printf '%6.2f' "$restic_s") s, $(mib "$restic_added") MiB added → Bulwark $(r "$restic_s" "$i_s")× faster, $(r "$restic_added" "$i_stored")× fewer bytes
                  after 0.5% of the rows ($h_changed of $h_pages pages, $(r "$(( h_changed * 100 ))" "$h_pages")%): $(printf '%6.2f' "$h_s") s, $(mib "$h_stored") MiB added
chain restore     full + 6 incrementals $(printf '%6.2f' "$rc_s") s vs full alone $(printf '%6.2f' "$rf_s") s (medians of 3) → $(r "$rc_s" "$rf_s")×   (target ≤ 1.5×); result $chain_same to the live file
REPORT
