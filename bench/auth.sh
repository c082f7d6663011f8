#!/usr/bin/env bash
# What auth costs (issue 15), in one run on one machine: herald with --auth off, and with
# --auth all on an HS256 and on an RS256 key, each RUNS times:
#   fanout  SUBSCRIBERS SSE subscribers with a token (checked once, at the subscribe),
#           MESSAGES published at RATE/s with a token: CPU per delivery
#   publish one subscriber, PUBLISHES pipelined publishes, each carrying a verified token:
#           CPU per publish (the signature check is on every publish)
# Prints herald-bench's JSON lines and the medians per setup.
# Usage: bench/auth.sh [SUBSCRIBERS] [MESSAGES] [RATE] [PUBLISHES] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
subs=${1:-2000}
msgs=${2:-200}
rate=${3:-200}
pubs=${4:-20000}
runs=${5:-3}
dir=$(mktemp -d)
results="$dir/results"
pid=
trap 'stop_herald; rm -rf "$dir"' EXIT

secret=$(node -e 'console.log(require("crypto").randomBytes(32).toString("hex"))')
# An RSA key pair; tokens for both keys, valid for an hour, allowed everything on bench topics.
node -e '
const c = require("crypto"), fs = require("fs"), dir = process.argv[1], secret = process.argv[2];
const { publicKey, privateKey } = c.generateKeyPairSync("rsa", { modulusLength: 2048 });
fs.writeFileSync(dir + "/rsa.pem", publicKey.export({ type: "spki", format: "pem" }));
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
const claims = { sub: "bench", exp: Math.floor(Date.now() / 1000) + 3600,
  herald: { publish: ["bench*"], subscribe: ["bench*"] } };
for (const alg of ["HS256", "RS256"]) {
  const input = b64({ alg, typ: "JWT" }) + "." + b64(claims);
  const sig = alg === "HS256" ? c.createHmac("sha256", secret).update(input).digest("base64url")
                              : c.sign("sha256", Buffer.from(input), privateKey).toString("base64url");
  fs.writeFileSync(dir + "/" + alg + ".jwt", input + "." + sig);
}' "$dir" "$secret"

run() { # SETUP TOKEN ARGS... (herald-bench arguments after the token)
  local setup=$1 token=$2
  shift 2
  ./build/herald-bench --port "$port" --pid "$pid" --topic "bench$RANDOM" ${token:+--token "$token"} "$@" |
    sed "s/^{/{\"setup\":\"$setup\",/" | tee -a "$results"
}

for _ in $(seq "$runs"); do
  for setup in off hs256 rs256; do
    case $setup in
      off) args=(); token= ;;
      hs256) args=(--auth all --jwt-key "hs256:$secret"); token=$(cat "$dir/HS256.jwt") ;;
      rs256) args=(--auth all --jwt-key "$dir/rsa.pem"); token=$(cat "$dir/RS256.jwt") ;;
    esac
    start_herald "$dir/log" --workers 1 --heartbeat 60000 "${args[@]}"
    run "$setup-fanout" "$token" --subscribers "$subs" --messages "$msgs" --rate "$rate"
    run "$setup-publish" "$token" --subscribers 1 --messages "$pubs" --rate 1000000
    stop_herald
  done
done

node -e '
const runs = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = (v) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
for (const setup of [...new Set(runs.map((r) => r.setup))]) {
  const mine = runs.filter((r) => r.setup === setup);
  console.log(JSON.stringify({ setup, median_of: mine.length,
    lost: Math.max(...mine.map((r) => r.lost)), duplicates: Math.max(...mine.map((r) => r.duplicates)),
    deliveries_per_s: med(mine.map((r) => r.deliveries_per_s)),
    p50_ms: med(mine.map((r) => r.latency_ms.p50)), p99_ms: med(mine.map((r) => r.latency_ms.p99)),
    cpu_s_per_million_deliveries: med(mine.map((r) => r.server_cpu_s_per_million_deliveries)),
    publishes_per_s: med(mine.map((r) => r.publishes_acked / r.seconds)),
    cpu_us_per_publish: med(mine.map((r) => r.server_cpu_s * 1e6 / r.publishes_acked)) }));
}' "$results"
