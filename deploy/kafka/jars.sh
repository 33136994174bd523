# shellcheck shell=bash
# The Kafka jars from Maven Central (deploy/kafka/pom.xml) and the Java they need, shared by
# deploy/kafka/kafka.sh (one broker) and deploy/kafka/cluster.sh (three); sourced, not run.
# Needs POM, KAFKA_VERSION, CACHE_DIR, LIB_DIR and the caller's log and die.

require_java() {
  command -v java >/dev/null || die "java not found on PATH (Kafka $KAFKA_VERSION needs Java 17+)"
  local v
  v="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
  [[ "${v%%.*}" =~ ^[0-9]+$ && "${v%%.*}" -ge 17 ]] || die "Java 17+ required, found java.specification.version=$v"
}

# Download broker jars into the cache (once per Kafka version / pom content).
ensure_jars() {
  local stamp="$LIB_DIR/.pom.sha256" want
  want="$(sha256sum "$POM" | cut -d' ' -f1)"
  if compgen -G "$LIB_DIR/kafka_2.13-*.jar" >/dev/null && [[ "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found: needed once to download the Kafka jars (Debian: apt-get install maven)"
  log "downloading Apache Kafka $KAFKA_VERSION jars from Maven Central into $LIB_DIR (first run only, takes a while)..."
  mkdir -p "$CACHE_DIR"
  local tmp="$CACHE_DIR/lib.tmp.$$"
  rm -rf "$tmp"
  if ! mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" -DincludeScope=runtime; then
    rm -rf "$tmp"
    die "maven could not resolve the Kafka jars (see output above)"
  fi
  echo "$want" >"$tmp/.pom.sha256"
  rm -rf "$LIB_DIR"
  mv "$tmp" "$LIB_DIR"
}

