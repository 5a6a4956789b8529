# bench: fib — twin of fib.lab. Recursive fib(30).
def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


print(fib(30))
