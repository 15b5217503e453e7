#!/bin/sh
# Write Alertmanager's configuration from the environment, then exec Alertmanager (same pid).
#
# Receivers, each used when its variables are set (the ones the services' own alerts use):
#   Telegram: TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID (ALERT_API_ROOT overrides the API root)
#   Slack:    SLACK_WEBHOOK_URL
# With neither, alerts are only shown in Prometheus/Alertmanager and a warning is printed.
# The file (it holds the tokens) goes to a tmpfs, readable by Alertmanager's user only.
set -eu

out=${ALERTMANAGER_CONFIG:-/run/alertmanager/alertmanager.yml}
bin=${ALERTMANAGER_BIN:-/bin/alertmanager}

# A YAML single-quoted scalar: quotes doubled, nothing else is special.
quote() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"
}

telegram=""
if [ -n "${TELEGRAM_BOT_TOKEN:-}" ] || [ -n "${TELEGRAM_CHAT_ID:-}" ]; then
    case "${TELEGRAM_CHAT_ID:-}" in
    "" | - | *[!0-9-]* | ?*-*)
        echo "alertmanager start: TELEGRAM_CHAT_ID must be a number like 123456 or -100123456" >&2
        exit 1
        ;;
    esac
    if [ -z "${TELEGRAM_BOT_TOKEN:-}" ]; then
        echo "alertmanager start: TELEGRAM_CHAT_ID is set but TELEGRAM_BOT_TOKEN is empty" >&2
        exit 1
    fi
    telegram="    telegram_configs:
      - bot_token: $(quote "$TELEGRAM_BOT_TOKEN")
        chat_id: $TELEGRAM_CHAT_ID
        api_url: $(quote "${ALERT_API_ROOT:-https://api.telegram.org}")
        send_resolved: true"
fi

slack=""
if [ -n "${SLACK_WEBHOOK_URL:-}" ]; then
    slack="    slack_configs:
      - api_url: $(quote "$SLACK_WEBHOOK_URL")
        send_resolved: true
        title: '{{ .Status | toUpper }}: {{ .CommonLabels.alertname }}'
        text: '{{ range .Alerts }}{{ .Annotations.summary }} ({{ .Labels.severity }}){{ \"\\n\" }}{{ end }}'"
fi

if [ -z "$telegram" ] && [ -z "$slack" ]; then
    echo "alertmanager start: no TELEGRAM_* or SLACK_WEBHOOK_URL in .env: alerts are not sent anywhere" >&2
fi

umask 077
cat >"$out" <<EOF
# Written by deploy/alertmanager/start.sh at container start; do not edit.
route:
  receiver: operators
  group_by: [alertname]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 1h
  routes:
    - matchers: ['severity="critical"']
      receiver: operators
      repeat_interval: 15m
receivers:
  - name: operators
$telegram
$slack
EOF

exec "$bin" --config.file="$out" --storage.path=/alertmanager "$@"
