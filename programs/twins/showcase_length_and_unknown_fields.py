xs = [1, 2]
try:
    print("length:", xs.length)
except Exception as e:
    print("caught:", e)
try:
    print("lengths:", "abc".length, "😀".length)
except Exception as e:
    print("caught:", e)
try:
    print("size:", "abc".size)
except Exception as e:
    print("caught:", e)
try:
    print("list size:", xs.size)
except Exception as e:
    print("caught:", e)
print("upper still a method:", "abc".upper())
