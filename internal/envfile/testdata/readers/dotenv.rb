# Reads .env files with the Ruby dotenv gem as Rails loads .env.production,
# for internal/envfile's differential test: this file is fediops's own, the
# gem comes from Debian (ruby-dotenv) or from a checkout of the gem's lib
# directory given as the first argument.
#
#   ruby -E UTF-8 dotenv.rb [GEM_LIB_DIR] < manifest.jsonl > out.jsonl
#
# Each manifest line is {"path": FILE, "env": {NAME: VALUE}}: the file is
# read with ENV holding exactly env, as Dotenv.load (dotenv-rails) reads it,
# without changing ENV. The first output line names the gem's version; then
# one line per file: {"keys": {KEY: VALUE}, "commands": [...]} with the
# commands the gem ran through backticks, in order, or {"error": "Class:
# message"} when the gem refuses the file.
require "json"

$LOAD_PATH.unshift(ARGV[0]) if ARGV[0]
require "dotenv"
require "dotenv/version"

# Record the $(...) commands the gem runs; they still run.
$runs = nil
module Kernel
  alias_method :__envfile_backtick, :`
  def `(cmd)
    $runs << cmd if $runs
    __envfile_backtick(cmd)
  end
end

def read_env(path)
  if Dotenv::VERSION >= "3"
    Dotenv::Environment.new(path, overwrite: false) # Dotenv.load
  else
    Dotenv::Environment.new(path, true) # Dotenv.load: is_load
  end
end

$stdout.sync = false
puts JSON.generate({ "reader" => "ruby dotenv", "version" => Dotenv::VERSION, "ruby" => RUBY_VERSION })
$stdin.each_line do |line|
  item = JSON.parse(line)
  ENV.replace(item["env"])
  $runs = []
  out = begin
    { "keys" => read_env(item["path"]).to_h, "commands" => $runs }
  rescue Exception => e # FormatError is a SyntaxError, not a StandardError
    { "error" => "#{e.class}: #{e.message}", "commands" => $runs }
  end
  $runs = nil
  puts JSON.generate(out)
end
