#!/usr/bin/env python3
"""Random ERB templates for a differential run against Ruby.

Usage (from this directory):
  mkdir -p /tmp/diff/cases && cp -a files env-* commands.tsv generate.sh /tmp/diff/
  python3 random_templates.py SEED COUNT /tmp/diff/cases
  /tmp/diff/generate.sh
  ERB_GOLDEN_DIR=/tmp/diff cargo test -p dhow-core --test erb_golden

The templates mix the supported constructs (ENV lookups, string methods, numbers, arrays,
if/elsif/else, each, unless, modifiers, rescue, trimming tags, comments); some are invalid
Ruby on purpose, and then dhow must fail where Ruby fails. The random__* golden cases were
produced this way.
"""
import random, sys
random.seed(int(sys.argv[1]))
N = int(sys.argv[2])
ENVS = ['SERVER_IP', 'KAMAL_HOST', 'REVIEW_APP_PR_TITLE', 'SMTP_USERNAME', 'NOPE_NOPE', 'RAILS_LOG_LEVEL', 'MEDIA_PROXY_TTL', 'HOME', 'DOMAIN', 'CI']
STRS = ['"a b"', "'x'", '"  pad  "', '"A-b_C"', '""', '"q\\"uote"', '"tab\\tnl\\n"', '"é✓"', "'100%'", '"#{1 + 2}"', '"x#{nil}y"', '%q(p)', '%Q(v#{2})', '"-a-"']
NUMS = [str(random.choice([random.uniform(-1e6, 1e6), random.uniform(-1, 1), random.uniform(0, 1e-3), random.uniform(1e14, 1e17), float(random.randint(0, 10**16))])), '0', '1', '42', '-7', '3.5', '1e3', '0.1', '365 * 24', '10 / 3', '-9 % 4', '2 ** 5', '7.0 / 2']
STR_METHODS = ['strip', 'upcase', 'downcase', 'capitalize', 'length', 'empty?', 'to_i', 'to_s', 'inspect', 'to_json', 'chomp', 'reverse', 'to_sym', 'presence', 'blank?', 'lstrip', 'rstrip', 'chars', 'lines', 'split', 'swapcase', 'nil?', 'size', 'to_f', 'to_sym.inspect', 'split.inspect', 'chars.first']
STR_METHODS_ARGS = ['gsub(/[aeiou]/, "*")', "sub(/^(.)/, '<\\1>')", 'scan(/\\w+/).inspect', 'split(/[,\\s]+/).inspect', '[/\\w+/].inspect', 'match?(/A/i)', 'gsub(/(\\d)(\\D)?/, "\\\\2\\\\1")', 'sub(/\\s+$/m, "")', '=~ /[^a-z]/', '[/(\\w)(\\w)/, 2].inspect', 'start_with?("a")', 'end_with?("b", "c")', 'include?("-")', 'tr("a-c", "x")', 'delete("a")', 'sub("-", "+")', 'gsub("a", "o")', 'split("-")', '[0]', '[1..2]', '[-1]', '[0, 2]', '+ "z"', '* 2', '== "x"', '!= ""', 'chomp("e")']
def senv():
    k = random.choice(ENVS)
    return random.choice([f'ENV["{k}"]', f"ENV['{k}'].to_s", f'ENV.fetch("{k}", "d")', f'ENV.fetch("{k}") {{ "blk" }}', f'(ENV["{k}"] || "dflt")', f'ENV["{k}"].presence'])
def sexpr(d=0):
    r = random.random()
    if d > 2 or r < 0.3:
        return random.choice([random.choice(STRS), senv() if random.random()<0.5 else random.choice(STRS)])
    base = sexpr(d+1)
    if r < 0.55:
        return f'{base}.to_s.{random.choice(STR_METHODS)}'
    if r < 0.75:
        m = random.choice(STR_METHODS_ARGS)
        if m.startswith(('+', '*', '=', '!')):
            return '(' + base + '.to_s ' + m + ')'
        return base + '.to_s.' + m
    if r < 0.85:
        return f'({cond(d+1)} ? {sexpr(d+1)} : {sexpr(d+1)})'
    return f'"<#{{{sexpr(d+1)}}}>"'
def nexpr():
    return random.choice(NUMS + [f'({random.choice(NUMS)}) + ({random.choice(NUMS)})', f'"42abc".to_i', f'ENV.fetch("MEDIA_PROXY_TTL", "5").to_i * 2', f'[1, 2, 3].size', f'"3.25".to_f'])
def cond(d=0):
    return random.choice([senv(), f'{senv()} == "true"', f'{senv()}.to_s.empty?', f'!{senv()}', f'{senv()} && {senv()}', f'{senv()} || false', 'true', 'nil', f'{nexpr()} > 2', f'ENV.key?("{random.choice(ENVS)}")'])
def aexpr():
    return random.choice([f'%w[a b c]', '[1, "two", nil, 3.0]', '[" x ", "y "].map(&:strip)', '%w[b a c].sort', '[[1, 2], [3]].flatten', '[1, nil, 2].compact', f'{sexpr()}.to_s.split("")', '{ "k" => 1, :s => [2] }.to_a', '(1..4).to_a', '%w[a b].each_with_index.to_a' if False else '%w[x y].reverse'])
def insert():
    kind = random.random()
    e = sexpr() if kind < 0.5 else (nexpr() if kind < 0.7 else (aexpr() if kind < 0.85 else cond()))
    if random.random() < 0.3:
        e = f'{e}.inspect' if random.random() < 0.5 else f'{e}.to_json'
    open_ = random.choice(['<%=', '<%= ', '<%=  '])
    close = random.choice([' %>', ' -%>', '%>'])
    return f'{open_}{e}{close}'
def block(d=0):
    out = []
    for _ in range(random.randint(1, 4)):
        r = random.random()
        ind = random.choice(['', '  ', '\t'])
        if r < 0.45 or d > 2:
            out.append(f'{ind}k{random.randint(0,99)}: {insert()}{random.choice(["", " tail"])}\n')
        elif r < 0.6:
            dash = random.choice(['<%', '<%-'])
            c = random.choice(['%>', '-%>'])
            out.append(f'{ind}{dash} if {cond()} {c}\n')
            out.append(block(d+1))
            if random.random() < 0.5:
                out.append(f'{ind}{dash} elsif {cond()} {c}\n')
                out.append(block(d+1))
            if random.random() < 0.5:
                out.append(f'{ind}{dash} else {c}\n')
                out.append(block(d+1))
            out.append(f'{ind}{dash} end {c}\n')
        elif r < 0.72:
            c = random.choice(['%>', '-%>'])
            out.append(f'{ind}<% {aexpr()}.each do |item| {c}\n')
            out.append(f'{ind}  - <%= item.inspect %>\n')
            out.append(f'{ind}<% end {c}\n')
        elif r < 0.82:
            v = random.choice(['v1', 'v2', 'host'])
            close = random.choice(["%>", "-%>"])
            out.append(f'{ind}<% {v} = {sexpr()} {close}' + chr(10) + f'{ind}{v}: <%= {v} %>' + chr(10))
        elif r < 0.9:
            body = random.choice(["note", "multi" + chr(10) + "line", "x -%"])
            close = random.choice(["%>", "-%>"])
            out.append(ind + '<%# ' + body + ' ' + close + chr(10))
        elif r < 0.95:
            out.append(f'{ind}lit: <%% raw %%> and {insert()} <%- {random.choice(["1", "nil"])} %>z\n')
        else:
            c = random.choice(['%>', '-%>'])
            out.append(f'{ind}<% unless {cond()} {c}\n{block(d+1)}{ind}<% end {c}\n')
            out.append(f'{ind}m: <%= {sexpr()} if {cond()} %>|<%= {nexpr()} unless {cond()} %>\n')
            out.append(f'{ind}r: <%= begin; {sexpr()}; rescue NoMethodError => e; "nme"; end %>\n')
            out.append(f'{ind}f: <%= {random.uniform(-1e20, 1e20)} %> <%= {random.uniform(-1e-3, 1e-3)} %> <%= {random.randint(-10**6, 10**6)} / {random.randint(1, 99)} %> <%= {random.randint(-10**6, 10**6)} % {random.choice([-7, 3, 13])} %> <%= {random.uniform(0, 100):.3f} * {random.randint(1, 9)} %>\n')
    return ''.join(out)
for i in range(N):
    open(f'{sys.argv[3]}/fuzz{sys.argv[1]}_{i:04d}.yml', 'w').write(block())
