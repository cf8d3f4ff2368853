#!/usr/bin/env python3
"""Random dotenv files for a differential run of Dotenv.parse/Dotenv.load against Ruby.

Usage: python3 random_dotenv.py SEED COUNT DIR  (DIR holds cases/ and files/, set up like
random_templates.py describes); each case parses and loads its own generated `.envSEED_N`.
The random__dotenv* golden cases were produced this way.
"""
import random, sys
random.seed(int(sys.argv[1])); N=int(sys.argv[2])
KEYS=['A','B','FOO','foo.bar','X_1','export','SERVER_IP','HOME','DOTENV_LINEBREAK_MODE']
VALS=['plain','two words',"'single $A'",'"double $A"','"esc \\" q"',"'it''s'",'${A}x','$A-$B','\\$A','$(echo hi)','\\$(echo no)','"multi\nline"','a#b','a #comment',"'a # not'",'"\\n and \\t"','$','${','x}','$FOO}','"${HOME}/p"','legacy','= eq','"unterminated','\'','""',"''",' spaced ','$(echo $(echo nested))','${UNSET}','é✓','\\\\','a\\b','"a\\\\b"']
def line():
    r=random.random()
    if r<0.08: return '# comment'
    if r<0.12: return ''
    if r<0.15: return 'export '+random.choice(KEYS)
    k=random.choice(KEYS)
    sep=random.choice(['=',' = ','=',': ',':','= '])
    pre=random.choice(['','','export ','  ','\t'])
    v=random.choice(VALS)
    tail=random.choice(['','',' # c','  '])
    return pre+k+sep+v+tail
for i in range(N):
    name=f'.env{sys.argv[1]}_{i:04d}'
    body='\n'.join(line() for _ in range(random.randint(1,8)))+random.choice(['','\n','\r\n'])
    open(f'{sys.argv[3]}/files/{name}','w',newline='').write(body)
    open(f'{sys.argv[3]}/cases/dotenv{sys.argv[1]}_{i:04d}.yml','w').write(f'<% require "dotenv" %><%= Dotenv.parse("{name}").inspect %>\n<%= Dotenv.load("{name}").inspect %>\n<%= ENV.to_h.select {{ |k, _| k =~ /^(A|B|FOO|foo|X_1|export)/ }}.sort.inspect %>\n')
