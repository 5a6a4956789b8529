# bench: loop_sum — twin of loop_sum.lab. A while loop (not range/sum) summing
# 0..10,000,000, inside a function so the variables are fast locals.
def sum_to(n):
    s = 0
    i = 0
    while i < n:
        s = s + i
        i = i + 1
    return s


print(sum_to(10000000))
