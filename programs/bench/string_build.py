# bench: string_build — twin of string_build.lab.
#   1. repeated `s = s + piece` of 200,000 one-character pieces (a local, so
#      CPython's in-place concatenation applies, as it would to real code);
#   2. 200,000 pieces str(i) appended to a list and joined.
def build():
    s = ""
    for i in range(200000):
        s = s + str(i % 10)
    parts = []
    for i in range(200000):
        parts.append(str(i))
    joined = "".join(parts)
    print(len(s), len(joined))


build()
