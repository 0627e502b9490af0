#!/usr/bin/env bash
# Resolves Apache Kafka (broker + its runtime dependencies) from Maven Central
# into a lib directory. The broker runs in KRaft mode from these jars.
source "$(dirname "$0")/common.sh"

out="$TT_CACHE/kafka-$KAFKA_VERSION"
if [[ ! -f "$out/.complete" ]]; then
  log "resolving Apache Kafka $KAFKA_VERSION from Maven Central"
  rm -rf "$out" && mkdir -p "$out"
  cat >"$out/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>twinkle-ticket</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <!-- The broker logs through SLF4J; Kafka's own distribution ships log4j2 as the backend. -->
    <!-- Kafka still declares slf4j-api 1.7; pin 2.x so the log4j2 SLF4J 2 binding is picked up. -->
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.17</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
POM
  mvn -B -q -f "$out/pom.xml" -Dmaven.repo.local="$TT_CACHE/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$out/libs" \
    >"$out/mvn.log" 2>&1 || { log_tail "$out/mvn.log"; die "Maven could not resolve Kafka $KAFKA_VERSION"; }
  touch "$out/.complete"
  log "Kafka $KAFKA_VERSION: $(ls "$out/libs" | wc -l) jars"
fi

# MirrorMaker 2 (Kafka Connect's mirror connectors, dedicated mode) for the
# Seoul -> Singapore replication: its own lib directory, so the broker's
# class path stays the broker's.
mirror="$TT_CACHE/mirror-$KAFKA_VERSION"
[[ -f "$mirror/.complete" ]] && exit 0
log "resolving MirrorMaker 2 (connect-mirror $KAFKA_VERSION) from Maven Central"
rm -rf "$mirror" && mkdir -p "$mirror"
cat >"$mirror/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>twinkle-ticket</groupId>
  <artifactId>mirror-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>connect-mirror</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.17</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.24.3</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.24.3</version></dependency>
  </dependencies>
</project>
POM
mvn -B -q -f "$mirror/pom.xml" -Dmaven.repo.local="$TT_CACHE/m2" \
  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$mirror/libs" \
  >"$mirror/mvn.log" 2>&1 || { log_tail "$mirror/mvn.log"; die "Maven could not resolve connect-mirror $KAFKA_VERSION"; }
touch "$mirror/.complete"
log "MirrorMaker 2 $KAFKA_VERSION: $(ls "$mirror/libs" | wc -l) jars"
