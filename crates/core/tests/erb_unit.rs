//! Unit tests for the ERB renderer: every supported construct, trimming rules, and every error
//! path with its position and message.

use std::collections::BTreeMap;

use dhow_core::erb::{EnvOverlay, ErbError, ErbHost, ErrorKind, Rendered, render, render_with};

#[derive(Default)]
struct Host {
    env: BTreeMap<String, String>,
    commands: BTreeMap<String, Result<String, String>>,
    files: BTreeMap<String, String>,
}

impl Host {
    fn with_env(pairs: &[(&str, &str)]) -> Self {
        Self {
            env: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Self::default()
        }
    }

    fn command(mut self, command: &str, out: &str) -> Self {
        self.commands.insert(command.to_owned(), Ok(out.to_owned()));
        self
    }

    fn file(mut self, path: &str, text: &str) -> Self {
        self.files.insert(path.to_owned(), text.to_owned());
        self
    }
}

impl ErbHost for Host {
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
    fn env_vars(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    fn run(&self, command: &str) -> Result<String, String> {
        self.commands
            .get(command)
            .cloned()
            .unwrap_or_else(|| Err("not found".to_owned()))
    }
    fn read_file(&self, path: &str) -> Result<Option<String>, String> {
        let path = path.strip_prefix("/work/app/").unwrap_or(path);
        Ok(self.files.get(path).cloned())
    }
    fn current_dir(&self) -> String {
        "/work/app".to_owned()
    }
}

fn ok(template: &str, host: &Host) -> String {
    match render(template, "config/deploy.yml", host) {
        Ok(r) => r.text,
        Err(e) => panic!("render failed: {e}"),
    }
}

fn err(template: &str, host: &Host) -> ErbError {
    match render(template, "config/deploy.yml", host) {
        Ok(r) => panic!("expected an error, got {:?}", r.text),
        Err(e) => e,
    }
}

fn no_env() -> Host {
    Host::default()
}

// ----- template syntax and trimming ----------------------------------------------------------

#[test]
fn plain_text_passes_through() {
    assert_eq!(
        ok("service: app\nimage: x\n", &no_env()),
        "service: app\nimage: x\n"
    );
    assert_eq!(ok("", &no_env()), "");
}

#[test]
fn insert_env_lookup() {
    let host = Host::with_env(&[("HOST", "1.2.3.4")]);
    assert_eq!(ok("a: <%= ENV[\"HOST\"] %>\n", &host), "a: 1.2.3.4\n");
    assert_eq!(ok("a: <%= ENV['HOST'] %>\n", &host), "a: 1.2.3.4\n");
    assert_eq!(ok("a: <%= ENV['MISSING'] %>|\n", &host), "a: |\n");
}

#[test]
fn comment_tags_produce_nothing() {
    assert_eq!(ok("a<%# note %>b\n", &no_env()), "ab\n");
    assert_eq!(ok("<%# multi\nline %>\nx\n", &no_env()), "\nx\n");
    assert_eq!(ok("<%# trimmed -%>\nx\n", &no_env()), "x\n");
}

#[test]
fn dash_percent_trims_following_newline() {
    let host = Host::with_env(&[("K", "v")]);
    assert_eq!(
        ok("<% if ENV['K'] -%>\nyes\n<% end -%>\nafter\n", &host),
        "yes\nafter\n"
    );
    assert_eq!(
        ok("<% if ENV['K'] %>\nyes\n<% end %>\nafter\n", &host),
        "\nyes\n\nafter\n"
    );
    assert_eq!(ok("x<%= 1 -%>\r\ny", &host), "x1y");
    assert_eq!(ok("x<%= 1 -%>", &host), "x1");
}

#[test]
fn dash_open_trims_indentation() {
    assert_eq!(
        ok("  <%- if true -%>\n  yes\n  <%- end -%>\n", &no_env()),
        "  yes\n"
    );
    assert_eq!(ok("\t <%- x = 1 %>y\n", &no_env()), "y\n");
    // Only indentation is trimmed; text before the tag on the same line stays.
    assert_eq!(ok("x <%- 1 %>y\n", &no_env()), "x y\n");
    // Ruby's StringScanner anchors `^` at the end of the previous tag too.
    assert_eq!(ok("A<%= 1 %>  <%- 2 %>B\n", &no_env()), "A1B\n");
    assert_eq!(ok("<%%  <%- 1 %>q\n", &no_env()), "<%q\n");
}

#[test]
fn literal_percent_tags() {
    assert_eq!(ok("a <%% b %> c\n", &no_env()), "a <% b %> c\n");
    assert_eq!(ok("<%= \"100%%>\" %>\n", &no_env()), "100%>\n");
    assert_eq!(ok("a -%> b %%> c %>\n", &no_env()), "a -%> b %%> c %>\n");
}

#[test]
fn line_map_points_at_template_lines() {
    let host = Host::with_env(&[("K", "v")]);
    let r: Rendered = render(
        "a: 1\n<% if ENV['K'] -%>\nb: <%= ENV['K'] %>\n<% end -%>\nc: 3\n",
        "deploy.yml",
        &host,
    )
    .unwrap();
    assert_eq!(r.text, "a: 1\nb: v\nc: 3\n");
    assert_eq!(r.line_map, vec![1, 3, 5]);
    assert_eq!(r.source_line(3), 5);
    assert_eq!(r.source_line(9), 9);
}

// ----- ENV ------------------------------------------------------------------------------------

#[test]
fn env_fetch_forms() {
    let host = Host::with_env(&[("SET", "yes")]);
    assert_eq!(ok("<%= ENV.fetch(\"SET\") %>", &host), "yes");
    assert_eq!(ok("<%= ENV.fetch('UNSET', 'd') %>", &host), "d");
    assert_eq!(ok("<%= ENV.fetch('UNSET', 86400) %>", &host), "86400");
    assert_eq!(
        ok("<%= ENV.fetch('UNSET', 365 * 24 * 60 * 60) %>", &host),
        "31536000"
    );
    assert_eq!(ok("<%= ENV.fetch('UNSET', nil) %>|", &host), "|");
    assert_eq!(
        ok("<%= ENV.fetch('UNSET', ENV.fetch('SET', 'x')) %>", &host),
        "yes"
    );
    assert_eq!(
        ok(
            "<%= ENV.fetch('UNSET') { `git rev-parse HEAD`.strip } %>",
            &host.command("git rev-parse HEAD", "abc\n")
        ),
        "abc"
    );
}

#[test]
fn env_fetch_block_receives_key_and_is_lazy() {
    let host = Host::with_env(&[("SET", "v")]);
    assert_eq!(
        ok("<%= ENV.fetch('UNSET') { |k| \"no #{k}\" } %>", &host),
        "no UNSET"
    );
    // The block is not run when the variable is set (it would fail: no such command).
    assert_eq!(ok("<%= ENV.fetch('SET') { `missing` } %>", &host), "v");
}

#[test]
fn env_fetch_missing_is_a_key_error_with_position() {
    let e = err("a: 1\nb: <%= ENV.fetch(\"SERVER_IP\") %>\n", &no_env());
    assert_eq!(e.kind, ErrorKind::Raised("KeyError".into()));
    assert_eq!((e.line, e.column), (2, 8));
    assert_eq!(e.expression, "ENV.fetch(\"SERVER_IP\")");
    assert_eq!(
        e.to_string(),
        "config/deploy.yml:2:8: `ENV.fetch(\"SERVER_IP\")` raised KeyError: key not found: \"SERVER_IP\""
    );
    assert!(e.hint.unwrap().contains("set SERVER_IP"));
}

#[test]
fn env_assignment_is_seen_later_and_by_the_next_file() {
    let host = no_env();
    assert_eq!(
        ok(
            "<% ENV[\"RAILS_ENV\"] = \"production\" %><%= ENV['RAILS_ENV'] %>",
            &host
        ),
        "production"
    );
    let mut overlay = EnvOverlay::new();
    render_with("<% ENV['A'] = 'x' %>", "deploy.yml", &host, &mut overlay).unwrap();
    let r = render_with("<%= ENV['A'] %>", "deploy.staging.yml", &host, &mut overlay).unwrap();
    assert_eq!(r.text, "x");
    assert_eq!(overlay.changes().get("A"), Some(&Some("x".to_owned())));
    assert_eq!(
        ok(
            "<% ENV['A'] = nil %><%= ENV.key?('A') %>",
            &Host::with_env(&[("A", "1")])
        ),
        "false"
    );
}

#[test]
fn env_each_can_rewrite_values() {
    let host = Host::with_env(&[("Q", "\"quoted\""), ("S", "'single'"), ("P", "plain")]);
    let template = "<%\nENV.each do |key, value|\n  next unless value.is_a?(String) && value.length >= 2\n\n  if (value.start_with?('\"') && value.end_with?('\"')) ||\n     (value.start_with?(\"'\") && value.end_with?(\"'\"))\n    ENV[key] = value[1...-1]\n  end\nend\n%>\n<%= ENV['Q'] %> <%= ENV['S'] %> <%= ENV['P'] %>\n";
    assert_eq!(ok(template, &host), "\nquoted single plain\n");
}

// ----- expressions ----------------------------------------------------------------------------

#[test]
fn or_defaults_and_truthiness() {
    let host = Host::with_env(&[("EMPTY", "")]);
    assert_eq!(ok("<%= ENV['UNSET'] || 'd' %>", &host), "d");
    // "" is truthy in Ruby.
    assert_eq!(ok("<%= ENV['EMPTY'] || 'd' %>|", &host), "|");
    assert_eq!(ok("<%= ENV['EMPTY'].presence || 'd' %>", &host), "d");
    assert_eq!(ok("<%= ENV['UNSET'].presence || 'd' %>", &host), "d");
    assert_eq!(ok("<%= nil || false || 0 %>", &host), "0");
    assert_eq!(ok("<%= true && 'yes' %>", &host), "yes");
    assert_eq!(ok("<%= !ENV['UNSET'] %>", &host), "true");
}

#[test]
fn comparisons_and_ternaries() {
    let host = Host::with_env(&[("APP_SSL", "true")])
        .command("docker info --format '{{.Architecture}}'", "aarch64\n");
    assert_eq!(
        ok("<%= ENV.fetch(\"APP_SSL\", \"true\") == \"true\" %>", &host),
        "true"
    );
    assert_eq!(ok("<%= ENV.fetch('X', '').strip != '' %>", &host), "false");
    assert_eq!(
        ok(
            "<%= Kamal::Utils.docker_arch == \"arm64\" ? \"amd64\" : \"arm64\" %>",
            &host
        ),
        "amd64"
    );
    assert_eq!(ok("<%= 1 < 2 ? 'a' : 'b' %>", &host), "a");
}

#[test]
fn docker_arch_maps_like_kamal() {
    let cmd = "docker info --format '{{.Architecture}}'";
    assert_eq!(
        ok(
            "<%= Kamal::Utils.docker_arch %>",
            &no_env().command(cmd, "x86_64\n")
        ),
        "amd64"
    );
    assert_eq!(
        ok(
            "<%= Kamal::Utils.docker_arch %>",
            &no_env().command(cmd, "aarch64\n")
        ),
        "arm64"
    );
    assert_eq!(
        ok(
            "<%= Kamal::Utils.docker_arch %>",
            &no_env().command(cmd, " riscv64 \n")
        ),
        "riscv64"
    );
}

#[test]
fn interpolation_and_string_methods() {
    let host = Host::with_env(&[("N", "42"), ("T", "say \"hi\"\n")]);
    assert_eq!(ok("<%= \"pr-#{ENV['N']}\" %>", &host), "pr-42");
    assert_eq!(ok("<%= \"#{nil}x#{1 + 2}\" %>", &host), "x3");
    assert_eq!(ok("<%= 'a-b-c'.tr('-', '_') %>", &host), "a_b_c");
    assert_eq!(
        ok("<%= ENV['T'].to_json %>", &host),
        "\"say \\\"hi\\\"\\n\""
    );
    assert_eq!(ok("<%= ENV['N'].to_i + 1 %>", &host), "43");
    assert_eq!(
        ok(
            "<%= '  x  '.strip %>|<%= \"x\\n\".chomp %>|<%= 'AbC'.downcase %>",
            &host
        ),
        "x|x|abc"
    );
    assert_eq!(
        ok("<%= 'SECRET'.downcase.to_sym.inspect %>", &host),
        ":secret"
    );
    assert_eq!(
        ok(
            "<%= 'hello'[1...-1] %>|<%= 'hello'[0] %>|<%= 'hello'[1, 2] %>",
            &host
        ),
        "ell|h|el"
    );
    assert_eq!(ok("<%= ENV['UNSET'].to_s.empty? %>", &host), "true");
    assert_eq!(ok("<%= 'a' 'b' %>", &host), "ab");
    assert_eq!(ok("<%= %q(it's) %> <%= %Q(#{1}) %>", &host), "it's 1");
}

#[test]
fn values_print_like_ruby() {
    let host = no_env();
    assert_eq!(
        ok(
            "<%= 1.5 %> <%= 3.0 %> <%= 10 / 3 %> <%= -7 / 2 %> <%= 7 % -3 %>",
            &host
        ),
        "1.5 3.0 3 -4 -2"
    );
    assert_eq!(ok("<%= [1, 'a', nil] %>", &host), "[1, \"a\", nil]");
    assert_eq!(ok("<%= %w[a b].join(',') %>", &host), "a,b");
    assert_eq!(
        ok("<%= :sym %> <%= true %> <%= nil.inspect %>", &host),
        "sym true nil"
    );
    assert_eq!(ok("<%= { 'a' => 1 } %>", &host), "{\"a\"=>1}");
}

#[test]
fn local_variables_and_modifiers() {
    let host = Host::with_env(&[("REVIEW_APP_PR_NUMBER", "")]);
    let t = "<% pr = ENV[\"REVIEW_APP_PR_NUMBER\"].to_s %>\n<% pr = nil if pr.empty? %>\n<% slug = pr ? \"pr-#{pr}\" : \"sandbox\" %>\n<% role = \"bike_index_#{slug.tr(\"-\", \"_\")}\" %>\n<%= slug %> <%= role %>\n";
    assert_eq!(ok(t, &host), "\n\n\n\nsandbox bike_index_sandbox\n");
    let host = Host::with_env(&[("REVIEW_APP_PR_NUMBER", "12")]);
    assert_eq!(ok(t, &host), "\n\n\n\npr-12 bike_index_pr_12\n");
    assert_eq!(ok("<% x ||= 'a' %><% x ||= 'b' %><%= x %>", &host), "a");
}

#[test]
fn if_elsif_else_unless() {
    let t = "<% if ENV['A'] == '1' -%>\none\n<% elsif ENV['A'] == '2' -%>\ntwo\n<% else -%>\nother\n<% end -%>\n";
    assert_eq!(ok(t, &Host::with_env(&[("A", "1")])), "one\n");
    assert_eq!(ok(t, &Host::with_env(&[("A", "2")])), "two\n");
    assert_eq!(ok(t, &no_env()), "other\n");
    assert_eq!(ok("<% unless ENV['A'] %>none<% end %>", &no_env()), "none");
    assert_eq!(
        ok("<%= 'x' if false %>|<%= 'y' unless false %>", &no_env()),
        "|y"
    );
}

#[test]
fn each_loops_over_literal_arrays() {
    let t = "<% %w[a b].each do |h| -%>\n  - <%= h %>\n<% end -%>\n";
    assert_eq!(ok(t, &no_env()), "  - a\n  - b\n");
    let t = "<% ['x', 'y'].each_with_index { |v, i| %><%= i %><%= v %>,<% } %>";
    assert_eq!(ok(t, &no_env()), "0x,1y,");
    assert_eq!(
        ok(
            "<%= [1, 2, 3].map { |i| i * 2 }.select { |i| i > 2 }.join('-') %>",
            &no_env()
        ),
        "4-6"
    );
    assert_eq!(
        ok(
            "<% [1, 2, 3].each do |i| %><% next if i == 2 %><%= i %><% end %>",
            &no_env()
        ),
        "13"
    );
    assert_eq!(
        ok(
            "<% [1, 2, 3].each do |i| %><% break if i == 2 %><%= i %><% end %>",
            &no_env()
        ),
        "1"
    );
}

#[test]
fn commands_run_through_the_host() {
    let host = no_env()
        .command("git rev-parse HEAD", "abc123\n")
        .command("echo v1", "v1\n");
    assert_eq!(ok("<%= `git rev-parse HEAD` %>", &host), "abc123\n");
    assert_eq!(ok("<%= `git rev-parse HEAD`.strip %>", &host), "abc123");
    assert_eq!(ok("<%= %x(echo v1).strip %>", &host), "v1");
    let host = Host::with_env(&[("V", "v1")]).command("echo v1", "v1\n");
    assert_eq!(ok("<%= `echo #{ENV['V']}`.chomp %>", &host), "v1");
}

#[test]
fn command_that_cannot_start_is_an_error() {
    let e = err("x: <%= `nope` %>", &no_env());
    assert_eq!(e.kind, ErrorKind::Raised("Errno::ENOENT".into()));
    assert_eq!(e.expression, "`nope`");
}

#[test]
fn begin_rescue() {
    let host = no_env();
    assert_eq!(
        ok(
            "<% begin; require \"dotenv\"; Dotenv.load(\".kamal/secrets.staging\"); rescue LoadError; end %>ok",
            &host
        ),
        "ok"
    );
    assert_eq!(
        ok(
            "<%= begin; ENV.fetch('X'); rescue KeyError => e; e.message; end %>",
            &host
        ),
        "key not found: \"X\""
    );
    assert_eq!(
        ok("<%= ENV.fetch('X') rescue 'fallback' %>", &host),
        "fallback"
    );
    // LoadError is not a StandardError: a bare rescue does not catch it... and unsupported code
    // is never swallowed by rescue.
    let e = err(
        "<% begin; HetznerDeployConfig.web_host; rescue; end %>",
        &host,
    );
    assert_eq!(e.kind, ErrorKind::Unsupported);
}

#[test]
fn raise_is_reported_with_its_message() {
    let e = err(
        "<%= ENV.fetch(\"DOMAIN\") { raise \"Set DOMAIN before deploying the demo\" } %>",
        &no_env(),
    );
    assert_eq!(e.kind, ErrorKind::Raised("RuntimeError".into()));
    assert_eq!(e.message, "Set DOMAIN before deploying the demo");
    assert!(
        e.to_string()
            .contains("raised RuntimeError: Set DOMAIN before deploying the demo")
    );
}

#[test]
fn files_and_paths() {
    let host = Host::with_env(&[("HOME", "/home/me")]).file(".ruby-version", "3.3.0\n");
    assert_eq!(
        ok("<%= File.read('.ruby-version').strip %>", &host),
        "3.3.0"
    );
    assert_eq!(
        ok(
            "<%= File.read(File.expand_path('.ruby-version', __dir__)) %>",
            &host
        ),
        "3.3.0\n"
    );
    assert_eq!(
        ok("<%= File.expand_path('~/.ssh/id') %>", &host),
        "/home/me/.ssh/id"
    );
    assert_eq!(
        ok("<%= File.expand_path('a/../b') %>", &host),
        "/work/app/b"
    );
    assert_eq!(ok("<%= File.join('a', 'b/', '/c') %>", &host), "a/b/c");
    assert_eq!(
        ok(
            "<%= File.exist?('.ruby-version') %> <%= File.exist?('nope') %>",
            &host
        ),
        "true false"
    );
    assert_eq!(
        ok("<%= Dir.pwd %> <%= __dir__ %> <%= __FILE__ %>", &host),
        "/work/app . (erb)"
    );
    let e = err("<%= File.read('.redis-password') %>", &host);
    assert_eq!(e.kind, ErrorKind::Raised("Errno::ENOENT".into()));
}

#[test]
fn dotenv_load_sets_unset_variables_only() {
    let host = Host::with_env(&[("KEEP", "env")]).file(
        ".env",
        "# comment\nA=1\nexport B='two words'\nKEEP=file\nC=\"x${A}y\"\n",
    );
    let t = "<% require \"dotenv\"; Dotenv.load(\".env\") %><%= ENV['A'] %>|<%= ENV['B'] %>|<%= ENV['KEEP'] %>|<%= ENV['C'] %>";
    assert_eq!(ok(t, &host), "1|two words|env|x1y");
    // A missing file is ignored by load, an error for load!.
    assert_eq!(
        ok("<% require 'dotenv'; Dotenv.load('.nope') %>ok", &host),
        "ok"
    );
    let e = err("<% require 'dotenv'; Dotenv.load!('.nope') %>", &host);
    assert_eq!(e.kind, ErrorKind::Raised("Errno::ENOENT".into()));
    // Dotenv must be required first, as in Kamal.
    let e = err("<% Dotenv.load('.env') %>", &host);
    assert_eq!(e.kind, ErrorKind::Raised("NameError".into()));
}

#[test]
fn ruby_constants() {
    assert_eq!(
        ok(
            "<%= ENV['RBENV_VERSION'] || \"#{RUBY_ENGINE}-#{RUBY_ENGINE_VERSION}\" %>",
            &no_env()
        ),
        "ruby-3.3.7"
    );
}

// ----- rejections -----------------------------------------------------------------------------

#[test]
fn application_constants_are_rejected_with_position() {
    let e = err(
        "a: 1\nhost: <%= HetznerDeployConfig.web_host %>\n",
        &no_env(),
    );
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert_eq!((e.line, e.column), (2, 11));
    assert_eq!(e.expression, "HetznerDeployConfig");
    assert!(e.to_string().starts_with(
        "config/deploy.yml:2:11: unsupported ERB expression `HetznerDeployConfig`: `HetznerDeployConfig` is not a constant dhow knows"
    ));
    assert!(e.hint.unwrap().contains("docs/erb.md"));
}

#[test]
fn unsupported_constructs_are_rejected() {
    let cases: &[(&str, &str)] = &[
        (
            "<% require_relative \"config/application\" %>",
            "require_relative \"config/application\"",
        ),
        ("<% require \"rails\" %>", "require \"rails\""),
        (
            "<%= Gem::Specification.find_by_name(\"x\").gem_dir %>",
            "Gem",
        ),
        ("<%= Rails.application %>", "Rails"),
        ("<%= 'a'.gsub(/(?=a)/, 'b') %>", "/(?=a)/"),
        ("<%= @x %>", "@"),
        ("<% def f; end %>", "def"),
        ("<%= <<~EOS %>", "<<~"),
        ("<%= some_method %>", "some_method"),
        ("<% puts 'x' %>", "puts 'x'"),
        ("<%= 'x'.unknown_thing %>", "'x'.unknown_thing"),
        ("<% while true; end %>", "while"),
    ];
    for (template, expression) in cases {
        let e = err(template, &no_env());
        assert_eq!(e.kind, ErrorKind::Unsupported, "{template}: {e}");
        assert!(
            e.expression.starts_with(expression),
            "{template}: expression {:?}",
            e.expression
        );
        assert_eq!(e.line, 1);
    }
}

#[test]
fn nil_method_calls_are_no_method_errors() {
    let e = err("<%= ENV['UNSET'].strip %>", &no_env());
    assert_eq!(e.kind, ErrorKind::Raised("NoMethodError".into()));
    assert_eq!(e.message, "undefined method `strip' for nil");
}

#[test]
fn syntax_errors_name_the_position() {
    let e = err("a\n<% if %>\n", &no_env());
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert_eq!(e.line, 2);
    let e = err("<% if true %>x\n", &no_env());
    assert_eq!(e.kind, ErrorKind::Syntax);
    let e = err("x\n  y <%= ENV['A'\n", &no_env());
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert_eq!((e.line, e.column), (2, 5));
    assert!(e.message.contains("never closed"));
    let e = err("<%= 'abc %>", &no_env());
    assert_eq!(e.kind, ErrorKind::Syntax);
}

#[test]
fn comment_running_to_the_tag_end_is_rejected() {
    // Ruby would silently drop "\nfoo\n" here.
    let e = err("<% # note %>\nfoo\n", &no_env());
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert_eq!(e.column, 4);
    // Harmless forms are fine.
    assert_eq!(ok("<% # note -%>\nfoo\n", &no_env()), "foo\n");
    assert_eq!(ok("<%\n# note\nx = 1\n%>y", &no_env()), "y");
    let e = err("<%= 1 # c %>", &no_env());
    assert_eq!(e.kind, ErrorKind::Unsupported);
}

#[test]
fn errors_report_character_columns() {
    let e = err("é: <%= ENV.fetch('X') %>", &no_env());
    assert_eq!((e.line, e.column), (1, 8));
}

#[test]
fn require_lasts_for_the_whole_load() {
    let host = no_env().file(".env", "A=1\n");
    let mut overlay = EnvOverlay::new();
    render_with("<% require 'dotenv' %>", "deploy.yml", &host, &mut overlay).unwrap();
    let r = render_with(
        "<% Dotenv.load %><%= ENV['A'] %>",
        "deploy.staging.yml",
        &host,
        &mut overlay,
    )
    .unwrap();
    assert_eq!(r.text, "1");
}

#[test]
fn type_errors_use_ruby_messages() {
    let e = err("<%= 'a' + nil %>", &no_env());
    assert_eq!(e.kind, ErrorKind::Raised("TypeError".into()));
    assert_eq!(e.message, "no implicit conversion of nil into String");
    let e = err("<%= 1 + 'a' %>", &no_env());
    assert_eq!(e.message, "String can't be coerced into Integer");
    let e = err("<%= 1 / 0 %>", &no_env());
    assert_eq!(e.kind, ErrorKind::Raised("ZeroDivisionError".into()));
}

#[test]
fn rejection_messages_for_the_corpus_constructs() {
    let cases: &[(&str, &str)] = &[
        (
            "<% require_relative \"config/application\" %>",
            "config/deploy.yml:1:4: unsupported ERB expression `require_relative \"config/application\"`: `require_relative` runs Ruby or programs in ways dhow cannot reproduce",
        ),
        (
            "<%\nrequire File.expand_path(\"app/lib/hetzner_deploy_config.rb\", Dir.pwd)\n%>",
            "config/deploy.yml:2:1: unsupported ERB expression `require File.expand_path(\"app/lib/hetzner_deploy_config.rb\", Dir.pwd)`: `require \"/work/app/app/lib/hetzner_deploy_config.rb\"` loads Ruby code dhow cannot run; dhow supports require of dotenv, json, yaml, erb, English, psych, set, securerandom, shellwords",
        ),
        (
            "dockerfile: <%= File.join(Gem::Specification.find_by_name(\"fizzy-saas\").gem_dir, \"Dockerfile\") %>",
            "config/deploy.yml:1:27: unsupported ERB expression `Gem::Specification`: `Gem::Specification` reads installed Ruby gems; dhow does not run Ruby, so it has no gems (under Kamal this fails too unless the gem is installed)",
        ),
        (
            "<% ENV[\"X\"] = Rails.application.credentials.aws!.fetch(:x) %>",
            "config/deploy.yml:1:15: unsupported ERB expression `Rails`: `Rails` belongs to the Rails application, which Kamal does not load either (Ruby raises NameError: uninitialized constant Rails); read the value from ENV or a secret instead",
        ),
        (
            "a: <%= ENV['A'].to_s.gsub(/(?<=x)y/, '') %>",
            "config/deploy.yml:1:27: unsupported ERB expression `/(?<=x)y/`: look-around groups in regular expressions are not supported",
        ),
    ];
    for (template, expected) in cases {
        let e = err(template, &no_env());
        assert_eq!(e.to_string(), *expected);
    }
}

#[test]
fn standard_library_classes_are_named_as_such() {
    let e = err("version: <%= Time.now.to_i %>", &no_env());
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert_eq!(e.expression, "Time");
    assert!(
        e.message.contains("part of Ruby's standard library"),
        "{}",
        e.message
    );
}

#[test]
fn regular_expressions() {
    let host = Host::with_env(&[
        ("V", "v1.2.3"),
        ("HOSTS", "a.example.com, b.example.com ,c"),
    ]);
    assert_eq!(ok("<%= ENV['V'].sub(/^v/, '') %>", &host), "1.2.3");
    assert_eq!(
        ok("<%= ENV['V'].gsub(/(\\d)/, '<\\1>') %>", &host),
        "v<1>.<2>.<3>"
    );
    assert_eq!(
        ok("<%= ENV['HOSTS'].split(/\\s*,\\s*/).inspect %>", &host),
        "[\"a.example.com\", \"b.example.com\", \"c\"]"
    );
    assert_eq!(
        ok(
            "<%= ENV['V'] =~ /\\./ %>|<%= ENV['V'] !~ /x/ %>|<%= ENV['NOPE'] =~ /x/ %>|",
            &host
        ),
        "2|true||"
    );
    assert_eq!(
        ok(
            "<%= ENV['V'].match?(/\\Av\\d/) %> <%= ENV['V'][/\\d+$/] %> <%= ENV['V'].scan(/\\d/).join %>",
            &host
        ),
        "true 3 123"
    );
    assert_eq!(
        ok(
            "<%= %r{^v(?<major>\\d)}i.match?('V1') %> <%= /a\\/b/i.inspect %> <%= /x/m.to_s %>",
            &host
        ),
        "true /a\\/b/i (?m-ix:x)"
    );
    assert_eq!(
        ok("<% if ENV['V'] =~ /^v1\\./ %>one<% end %>", &host),
        "one"
    );
    let e = err("<%= 'a'.gsub(/(a)\\1/, '') %>", &host);
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("back-references"), "{}", e.message);
}

#[test]
fn commands_see_the_templates_env_changes() {
    struct EnvEcho;
    impl ErbHost for EnvEcho {
        fn env(&self, _: &str) -> Option<String> {
            None
        }
        fn env_vars(&self) -> Vec<(String, String)> {
            Vec::new()
        }
        fn run(&self, command: &str) -> Result<String, String> {
            Ok(format!("plain {command}"))
        }
        fn run_with_env(
            &self,
            command: &str,
            env_changes: &BTreeMap<String, Option<String>>,
        ) -> Result<String, String> {
            Ok(format!("{command} {env_changes:?}"))
        }
        fn read_file(&self, _: &str) -> Result<Option<String>, String> {
            Ok(None)
        }
        fn current_dir(&self) -> String {
            "/".into()
        }
    }
    let r = render(
        "<% ENV['X'] = '1' %><%= `echo $X` %>",
        "deploy.yml",
        &EnvEcho,
    )
    .unwrap();
    assert_eq!(r.text, "echo $X {\"X\": Some(\"1\")}");
    // The default forwards to `run`.
    let r = render(
        "<%= `hi` %>",
        "deploy.yml",
        &no_env().command("hi", "there"),
    )
    .unwrap();
    assert_eq!(r.text, "there");
}
