#!/usr/bin/env bash
# Resolves Apache Kafka (broker + its runtime dependencies) and MirrorMaker 2
# from Maven Central, each into its own lib directory. The broker runs in
# KRaft mode from the first; MirrorMaker (Kafka Connect's mirror connectors,
# dedicated mode) from the second, so the broker's class path stays the
# broker's.
source "$(dirname "$0")/common.sh"

# The broker and MirrorMaker log through SLF4J; Kafka's own distribution
# ships log4j2 as the backend. Kafka still declares slf4j-api 1.7; pin 2.x
# so the log4j2 SLF4J 2 binding is picked up.
LOGGING='<dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.17</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>'

kafka_dep() { echo "<dependency><groupId>org.apache.kafka</groupId><artifactId>$1</artifactId><version>$KAFKA_VERSION</version></dependency>"; }

# resolve DIR WHAT DEPENDENCY_XML: DIR/libs gets the runtime class path.
resolve() {
  local out=$1 what=$2 deps=$3
  [[ -f "$out/.complete" ]] && return 0
  log "resolving $what from Maven Central"
  rm -rf "$out" && mkdir -p "$out"
  cat >"$out/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>twinkle-ticket</groupId>
  <artifactId>$(basename "$out")-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    $deps
    $LOGGING
  </dependencies>
</project>
POM
  mvn -B -q -f "$out/pom.xml" -Dmaven.repo.local="$TT_CACHE/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$out/libs" \
    >"$out/mvn.log" 2>&1 || { log_tail "$out/mvn.log"; die "Maven could not resolve $what"; }
  touch "$out/.complete"
  log "$what: $(ls "$out/libs" | wc -l) jars"
}

resolve "$TT_CACHE/kafka-$KAFKA_VERSION" "Apache Kafka $KAFKA_VERSION" "$(kafka_dep kafka_2.13)"
resolve "$TT_CACHE/mirror-$KAFKA_VERSION" "MirrorMaker 2 (connect-mirror $KAFKA_VERSION)" \
  "$(kafka_dep connect-mirror)
    $(kafka_dep connect-runtime)"
