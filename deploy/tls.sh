# shellcheck shell=bash
# Throwaway TLS material and secrets for the local secured services (sourced, not run):
# deploy/kafka/secure.sh and deploy/redis/redis.sh --secure. Everything is made once per
# run directory with openssl and reused on later runs; delete the directory for new ones.
# For local development and tests only: the CA key sits next to the certificates.

# ensure_secret FILE: a random password (48 hex characters, safe in URLs and Kafka's
# SCRAM syntax) in FILE, mode 600; kept if FILE exists. Never printed.
ensure_secret() {
  local file="$1"
  [[ -s "$file" ]] && return 0
  (umask 077 && openssl rand -hex 24 >"$file.tmp") && mv "$file.tmp" "$file"
}

# ensure_ca DIR: DIR/ca.pem (certificate) and DIR/ca.key, a self-signed CA valid 10 years.
ensure_ca() {
  local dir="$1"
  [[ -s "$dir/ca.pem" && -s "$dir/ca.key" ]] && return 0
  mkdir -p "$dir"
  (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -subj "/CN=xpbank throwaway local CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>/dev/null) || { echo "tls: openssl could not make a CA in $dir" >&2; return 1; }
  chmod 644 "$dir/ca.pem"
}

# ensure_server_cert DIR NAME CN: DIR/NAME.pem and DIR/NAME.key signed by DIR's CA, for
# IP:127.0.0.1 and DNS:localhost (so clients verify host names), usable as a server and
# as a client certificate, valid 2 years. Remade when the CA is newer than it.
ensure_server_cert() {
  local dir="$1" name="$2" cn="$3"
  if [[ -s "$dir/$name.pem" && -s "$dir/$name.key" && ! "$dir/ca.pem" -nt "$dir/$name.pem" ]]; then
    return 0
  fi
  (umask 077 && openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$dir/$name.key" \
    -out "$dir/$name.csr" -subj "/CN=$cn" 2>/dev/null \
    && openssl x509 -req -sha256 -days 730 -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
      -CAcreateserial -out "$dir/$name.pem" -extfile <(printf '%s\n' \
        "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth,clientAuth" \
        "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid,issuer") 2>/dev/null) \
    || { echo "tls: openssl could not make the $name certificate in $dir" >&2; return 1; }
  rm -f "$dir/$name.csr"
  chmod 644 "$dir/$name.pem"
}
