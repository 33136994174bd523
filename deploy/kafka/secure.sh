# shellcheck shell=bash disable=SC2034  # (it sets variables kafka.sh uses)
# The secured broker of `deploy/kafka/kafka.sh --secure` (sourced by kafka.sh, not run).
#
# A second Kafka from the same jars, in its own run dir <root>/kafka-secure:
#   - clients: SASL_SSL on 127.0.0.1:$XPBANK_KAFKA_SECURE_PORT (9094), SCRAM-SHA-512. Users
#     `admin` (super user) and `xpbank` (the ACLs below), created at format time
#     (kafka-storage format --add-scram); the brokers also talk to each other as `admin` here.
#     `xpbank-gateway`, the gateway's own user, added once the broker runs: it may only
#     produce to the input topics, under a produce quota (grant_gateway).
#   - controller: 127.0.0.1:$XPBANK_KAFKA_SECURE_CONTROLLER_PORT (9095), TLS on loopback with
#     client certificates required: only a holder of the broker's key (the broker itself,
#     User:CN=xpbank-kafka-broker, a super user) gets in. No PLAINTEXT listener at all.
#   - a throwaway CA and a broker certificate for IP:127.0.0.1 and DNS:localhost (tls/),
#     random passwords (secrets/, mode 600): made once per run dir, reused on later `up`s;
#     `down --secure --purge` deletes the data only (so clients' settings stay valid), delete
#     <root>/kafka-secure for new ones.
#   - `up --secure` writes the xpbank client settings to <root>/kafka/secure.env, and the
#     gateway's to <root>/kafka/secure-gateway.env:
#       set -a; . .run/kafka/secure.env; set +a    # every xpbank command then uses it
#
# For local development and tests: the CA key and the admin password sit in the run dir.

# shellcheck source=deploy/tls.sh
source "$SCRIPT_DIR/../tls.sh"

NAME=kafka-secure
FLAGS=" --secure"
PORT="${XPBANK_KAFKA_SECURE_PORT:-9094}"
CONTROLLER_PORT="${XPBANK_KAFKA_SECURE_CONTROLLER_PORT:-9095}"
PORT_VARIABLES="XPBANK_KAFKA_SECURE_PORT / XPBANK_KAFKA_SECURE_CONTROLLER_PORT"
RUN_DIR="$(realpath -m "$RUN_ROOT/kafka-secure")"
ENV_FILE="$(realpath -m "$RUN_ROOT/kafka/secure.env")"
GATEWAY_ENV_FILE="$(realpath -m "$RUN_ROOT/kafka/secure-gateway.env")"
TLS_DIR="$RUN_DIR/tls"
SECRETS_DIR="$RUN_DIR/secrets"
ADMIN_PROPERTIES="$RUN_DIR/admin.properties"  # the admin's client settings, for the CLI tools
BROKER_CN=xpbank-kafka-broker
CLIENT_USER=xpbank
GATEWAY_USER=xpbank-gateway
CLIENT_ARGS=(--command-config "$ADMIN_PROPERTIES")
# The gateway's user (defence in depth behind its per-token rates): it may write the input
# topics (the registry's `direction` in, without a topic prefix; a unit test keeps this
# list equal to the registry) and nothing else, at most GATEWAY_QUOTA. With
# XPBANK_TOPIC_PREFIX, grant the same on the prefixed names.
GATEWAY_TOPICS="learning.caliper.v1 learning.submissions.v1 learning.mastery.v1 learning.curriculum.v1"
GATEWAY_QUOTA="producer_byte_rate=${XPBANK_KAFKA_GATEWAY_QUOTA_BYTES:-33554432}"

# What the xpbank user may do: exactly what xpbank's commands, workers and tests ask of the
# broker, on literal "*" resources. Topic names carry a free prefix (XPBANK_TOPIC_PREFIX;
# the tests use a random one per test) and group / transactional ids a generation
# (xpbank-g<N>), so no fixed name or prefix covers them; on a real cluster, grant the same
# operations on PREFIXED resources of your prefix. Lines are only ever added: after removing
# one, `down --secure --purge` and `up --secure` again.
ACL_SPEC='
# topics: create them (topics create, workers, Faust changelogs); metadata and offsets;
# read and converge their configs (topics check / create: IncrementalAlterConfigs);
# consume and produce; DeleteRecords (tests; Kafka has one Delete for records and topics)
--topic * --operation Create --operation Describe --operation DescribeConfigs --operation AlterConfigs --operation Read --operation Write --operation Delete
# consumer groups: join and commit (Read), committed offsets and lag (Describe)
--group * --operation Read --operation Describe
# transactional producers (a future exactly-once engine)
--transactional-id * --operation Write --operation Describe
# idempotent producers; the brokers configs (DescribeConfigs on the cluster: default retention)
--cluster --operation IdempotentWrite --operation DescribeConfigs
'
# Not granted (admin only): Alter on the cluster (ACLs, SCRAM credentials), AlterConfigs on
# the cluster (broker configs), Describe on the cluster (listing ACLs), deleting groups.

password_file() { echo "$SECRETS_DIR/$1.password"; }

# private FILE...: the files exist with mode 600 (writing them later keeps the mode).
private() { touch "$@" && chmod 600 "$@"; }

# Passwords, CA, broker certificate and keystore; the admin client settings; what
# kafka-storage format adds (the SCRAM users).
secure_prepare() {
  mkdir -p "$SECRETS_DIR" "$TLS_DIR"
  chmod 700 "$SECRETS_DIR"
  private "$CONFIG" "$ADMIN_PROPERTIES"  # both hold passwords
  local user
  for user in admin "$CLIENT_USER" keystore; do
    ensure_secret "$(password_file "$user")" || die "cannot write $(password_file "$user")"
  done
  ensure_ca "$TLS_DIR" || die "cannot make the CA"
  ensure_server_cert "$TLS_DIR" broker "$BROKER_CN" || die "cannot make the broker certificate"
  if [[ ! -s "$TLS_DIR/broker.p12" || "$TLS_DIR/broker.pem" -nt "$TLS_DIR/broker.p12" ]]; then
    (umask 077 && openssl pkcs12 -export -in "$TLS_DIR/broker.pem" -inkey "$TLS_DIR/broker.key" -certfile "$TLS_DIR/ca.pem" \
      -name broker -out "$TLS_DIR/broker.p12" -passout "file:$(password_file keystore)") \
      || die "cannot make the broker keystore"
  fi
  cat >"$ADMIN_PROPERTIES" <<EOF
# Generated by deploy/kafka/kafka.sh up --secure: the admin user, for Kafka's CLI tools
# (--command-config). Secret: mode 600.
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=$(jaas admin)
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
EOF
  # (The passwords are in this JVM's arguments while it formats: a few seconds, local users only.)
  FORMAT_ARGS=()
  for user in admin "$CLIENT_USER"; do
    FORMAT_ARGS+=(--add-scram "SCRAM-SHA-512=[name=$user,password=$(<"$(password_file "$user")")]")
  done
  # New passwords need a new format (the users are in the metadata log): the marker says which.
  STORAGE_TAG=" scram:$(cat "$(password_file admin)" "$(password_file "$CLIENT_USER")" | sha256sum | cut -c1-16)"
}

jaas() {
  echo "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$1\" password=\"$(<"$(password_file "$1")")\";"
}

secure_listener_configs() {
  cat <<EOF
# Clients and inter-broker: SASL_SSL, SCRAM-SHA-512 (this broker talks to itself as admin).
# Controller: TLS with client certificates, on loopback (see deploy/kafka/secure.sh).
listeners=SASL_SSL://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=SASL_SSL://$HOST:$PORT
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SSL
inter.broker.listener.name=SASL_SSL
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=$HOST:$CONTROLLER_PORT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$(jaas admin)
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/broker.p12
ssl.keystore.password=$(<"$(password_file keystore)")
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
listener.name.controller.ssl.client.auth=required
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:CN=$BROKER_CN
allow.everyone.if.no.acl.found=false
EOF
}

# The xpbank user's ACLs, once per data dir (and again when ACL_SPEC changes).
grant_acls() {
  local marker="$DATA_DIR/.xpbank-acls" want line args
  want="$(sha256sum <<<"$ACL_SPEC" | cut -c1-16)"
  [[ "$(cat "$marker" 2>/dev/null)" == "$want" ]] && return 0
  require_java
  log "granting user $CLIENT_USER its ACLs"
  while IFS= read -r line; do
    [[ -z "$line" || "$line" == \#* ]] && continue
    read -ra args <<<"$line"  # word splitting only: the "*" stays literal
    java "${TOOL_JAVA_OPTS[@]}" -cp "$LIB_DIR/*" org.apache.kafka.tools.AclCommand \
      --bootstrap-server "$HOST:$PORT" "${CLIENT_ARGS[@]}" --add --force \
      --allow-principal "User:$CLIENT_USER" "${args[@]}" </dev/null >/dev/null \
      || die "kafka-acls failed for: $line"
  done <<<"$ACL_SPEC"
  echo "$want" >"$marker"
}

tool() {  # CLASS ARGS...: a Kafka CLI tool as the admin
  java "${TOOL_JAVA_OPTS[@]}" -cp "$LIB_DIR/*" "$1" --bootstrap-server "$HOST:$PORT" "${CLIENT_ARGS[@]}" "${@:2}" \
    </dev/null >/dev/null
}

# The gateway's user: its SCRAM credential, ACLs (write the input topics; an idempotent
# producer) and produce quota, once per data dir (and again when any of them changes).
grant_gateway() {
  local marker="$DATA_DIR/.xpbank-gateway" want topic scram
  ensure_secret "$(password_file "$GATEWAY_USER")" || die "cannot write $(password_file "$GATEWAY_USER")"
  want="$( (cat "$(password_file "$GATEWAY_USER")"; echo "$GATEWAY_TOPICS $GATEWAY_QUOTA") | sha256sum | cut -c1-16)"
  [[ "$(cat "$marker" 2>/dev/null)" == "$want" ]] && return 0
  require_java
  log "giving user $GATEWAY_USER its credential, ACLs (write: $GATEWAY_TOPICS) and quota ($GATEWAY_QUOTA)"
  # (the password is in this JVM's arguments for a second, as at format time: local users only)
  scram="SCRAM-SHA-512=[password=$(<"$(password_file "$GATEWAY_USER")")]"
  tool kafka.admin.ConfigCommand --alter --entity-type users --entity-name "$GATEWAY_USER" --add-config "$scram" \
    || die "cannot add the SCRAM user $GATEWAY_USER"
  tool kafka.admin.ConfigCommand --alter --entity-type users --entity-name "$GATEWAY_USER" --add-config "$GATEWAY_QUOTA" \
    || die "cannot set the quota of $GATEWAY_USER"
  for topic in $GATEWAY_TOPICS; do
    tool org.apache.kafka.tools.AclCommand --add --force --allow-principal "User:$GATEWAY_USER" --topic "$topic" \
      --operation Write --operation Describe || die "kafka-acls failed for $GATEWAY_USER on $topic"
  done
  tool org.apache.kafka.tools.AclCommand --add --force --allow-principal "User:$GATEWAY_USER" --cluster \
    --operation IdempotentWrite || die "kafka-acls failed for $GATEWAY_USER on the cluster"
  echo "$want" >"$marker"
}

# The settings every xpbank command reads (SPEC §6 variables); paths, never secrets.
write_env() {
  mkdir -p "$(dirname "$ENV_FILE")"
  {
    echo "# Generated by deploy/kafka/kafka.sh up --secure: xpbank's client settings for the"
    echo "# secured broker. Load with: set -a; . $ENV_FILE; set +a"
    printf '%s=%q\n' \
      XPBANK_BROKER "kafka://$HOST:$PORT" \
      XPBANK_KAFKA_SECURITY_PROTOCOL SASL_SSL \
      XPBANK_KAFKA_SASL_MECHANISM SCRAM-SHA-512 \
      XPBANK_KAFKA_USERNAME "$CLIENT_USER" \
      XPBANK_KAFKA_PASSWORD_FILE "$(password_file "$CLIENT_USER")" \
      XPBANK_KAFKA_CA_FILE "$TLS_DIR/ca.pem"
  } >"$ENV_FILE.tmp"
  chmod 644 "$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  {
    echo "# Generated by deploy/kafka/kafka.sh up --secure: the settings of xpbank gateway's own"
    echo "# user on the secured broker (it may only produce to the input topics)."
    printf '%s=%q\n' \
      XPBANK_BROKER "kafka://$HOST:$PORT" \
      XPBANK_KAFKA_SECURITY_PROTOCOL SASL_SSL \
      XPBANK_KAFKA_SASL_MECHANISM SCRAM-SHA-512 \
      XPBANK_KAFKA_USERNAME "$GATEWAY_USER" \
      XPBANK_KAFKA_PASSWORD_FILE "$(password_file "$GATEWAY_USER")" \
      XPBANK_KAFKA_CA_FILE "$TLS_DIR/ca.pem"
  } >"$GATEWAY_ENV_FILE.tmp"
  chmod 644 "$GATEWAY_ENV_FILE.tmp"
  mv "$GATEWAY_ENV_FILE.tmp" "$GATEWAY_ENV_FILE"
}

secure_after_ready() {
  grant_acls
  grant_gateway
  write_env
  echo "$NAME: SASL_SSL (SCRAM-SHA-512, user $CLIENT_USER); client settings in $ENV_FILE"
  echo "$NAME: use them with: set -a; . $ENV_FILE; set +a"
}
