xs = [1]
push = xs.append
print(xs.append == xs.append, push == xs.append, xs.append != xs.append, xs.append == xs.pop, print == print)
print("ab".upper == "ab".upper, "ab".upper == "ab".lower)
