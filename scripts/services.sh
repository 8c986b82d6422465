# shellcheck shell=bash
# Test services for the AWS adapters, installed into .emu/ (ignored by git) from the npm registry
# and started on free loopback ports. Sourced by scripts/test.
#
# DynamoDB Local is AWS's own implementation, shipped inside the npm package
# amplify-dynamodb-simulator; it runs on the machine's Java 17.

EMU_DIR=${EMU_DIR:-"$PWD/.emu"}
DYNAMODB_SIMULATOR_VERSION=2.9.30

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

install_dynamodb_local() {
  local jar="$EMU_DIR/package/emulator/DynamoDBLocal.jar"
  [ -f "$jar" ] && return 0
  command -v java >/dev/null || { echo "installing Java 17 for DynamoDB Local"; apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless; }
  mkdir -p "$EMU_DIR"
  (cd "$EMU_DIR" && npm pack --silent "amplify-dynamodb-simulator@$DYNAMODB_SIMULATOR_VERSION" >/dev/null \
    && tar -xzf "amplify-dynamodb-simulator-$DYNAMODB_SIMULATOR_VERSION.tgz" \
    && rm -f "amplify-dynamodb-simulator-$DYNAMODB_SIMULATOR_VERSION.tgz")
  [ -f "$jar" ] || { echo "DynamoDB Local jar not found after install" >&2; return 1; }
}

# Starts DynamoDB Local in memory and exports AWS_ENDPOINT_URL_DYNAMODB and test credentials.
start_dynamodb_local() {
  install_dynamodb_local
  local port
  port=$(free_port)
  (cd "$EMU_DIR/package/emulator" && exec java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx"${DYNAMODB_HEAP:-512m}" \
    -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
    -inMemory -sharedDb -port "$port" -disableTelemetry) >"$EMU_DIR/dynamodb.log" 2>&1 &
  DYNAMODB_PID=$!
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
  # An open port is not enough: wait until it answers a real API call.
  for _ in $(seq 1 150); do
    if curl -s -o /dev/null -w '%{http_code}' -X POST "$AWS_ENDPOINT_URL_DYNAMODB" \
      -H 'Content-Type: application/x-amz-json-1.0' -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
      -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x' \
      -d '{}' 2>/dev/null | grep -q 200; then
      echo "DynamoDB Local ready at $AWS_ENDPOINT_URL_DYNAMODB (pid $DYNAMODB_PID)"
      return 0
    fi
    kill -0 "$DYNAMODB_PID" 2>/dev/null || { cat "$EMU_DIR/dynamodb.log" >&2; return 1; }
    sleep 0.2
  done
  echo "DynamoDB Local did not become ready" >&2
  cat "$EMU_DIR/dynamodb.log" >&2
  return 1
}

# cargo-lambda (with zig as the cross linker) and cfn-lint, from PyPI into a venv under .emu/.
install_lambda_tools() {
  local venv="$EMU_DIR/venv"
  if [ ! -x "$venv/bin/cargo-lambda" ] || [ ! -x "$venv/bin/cfn-lint" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet cargo-lambda ziglang cfn-lint
  fi
  export PATH="$venv/bin:$PATH"
}

stop_services() {
  [ -z "${DYNAMODB_PID:-}" ] || kill "$DYNAMODB_PID" 2>/dev/null || true
}

# The report tests rasterise PDF pages with pdftoppm (Debian's poppler-utils).
ensure_pdftoppm() {
  command -v pdftoppm >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq poppler-utils >/dev/null) || echo "poppler-utils not installed: the PDF test falls back to reading the PDF text"
  else
    echo "pdftoppm not found and cannot be installed: the PDF test falls back to reading the PDF text"
  fi
}
