# Records what Kamal 2.11 (with dotenv 3.2.0) makes of each case under cases/: loaded from the
# ERB of a throwaway config/deploy.yml by `record`, inside the real Kamal binary.
require "json"

root = ENV.fetch("GOLDEN_ROOT")
saved_env = ENV.to_h
substitution = Kamal::Secrets::Dotenv::InlineCommandSubstitution
Kamal::Secrets # installs Kamal's command substitution into dotenv

Dir[File.join(root, "{cases,corpus}", "*")].sort.each do |dir|
  kase = JSON.parse(File.read(File.join(dir, "case.json")))
  commands = kase.fetch("commands", {})
  default_output = kase["default_command_output"]
  # `$(...)` commands answer from the case's table instead of a shell.
  substitution.singleton_class.send(:define_method, :`) do |command|
    entry = commands.fetch(command) do
      if default_output == "reverse"
        # Reversed, with `$` made `%`: output is never re-substituted by dhow (a deliberate fix),
        # so the corpus compares parsing alone.
        { "stdout" => command.reverse.tr("$", "%") + "\n" }
      else
        raise "unexpected command: #{command}"
      end
    end
    entry = { "stdout" => entry } if entry.is_a?(String)
    entry.fetch("stdout")
  end

  result = {}
  Dir.chdir(dir) do
    # PATH stays (it holds only a shell) so that no real vault CLI is found.
    ENV.replace(kase.fetch("env", {}).merge("PATH" => saved_env.fetch("PATH")))
    begin
      secrets = Kamal::Secrets.new(destination: kase["destination"], secrets_path: "secrets")
      result["secrets"] = secrets.to_h.to_a
      result["lookups"] = kase.fetch("lookups", []).map do |key|
        begin
          [ key, { "value" => secrets[key] } ]
        rescue => e
          [ key, { "error" => e.message } ]
        end
      end
    rescue Exception => e
      result = { "error" => "#{e.class}: #{e.message}" }
    ensure
      ENV.replace(saved_env)
    end
  end
  File.write(File.join(dir, "expected.json"), JSON.pretty_generate(result) + "\n")
end
