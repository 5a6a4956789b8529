# bench: list_map — twin of list_map.lab (list append + index loop; dict with
# string keys built by concatenation).
def lists(n):
    xs = []
    for i in range(n):
        xs.append(i)
    s = 0
    for i in range(len(xs)):
        s = s + xs[i]
    print(len(xs), s)


def maps(n):
    m = {}
    for i in range(n):
        m["k" + str(i)] = i
    s = 0
    for i in range(n):
        s = s + m["k" + str(i)]
    print(len(m), s)


lists(1000000)
maps(200000)
