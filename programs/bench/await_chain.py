# bench: await_chain — twin of await_chain.lab.
# Closest honest equivalent: looplab's asyncio policy makes Promise.resolve(1)
# a done future, so this awaits one done asyncio.Future 1,000,000 times in a
# loop inside one coroutine. As in CPython, awaiting a done future returns its
# result at once without yielding to the event loop (no loop iterations), so
# this measures the await machinery itself, not scheduling. (Awaiting a
# trivially-completing coroutine would be a different looplab program:
# `await f()` of an async fn.)
import asyncio


async def chain(n):
    p = asyncio.get_running_loop().create_future()
    p.set_result(1)
    s = 0
    for i in range(n):
        v = await p
        s = s + v
    return s


async def main():
    print(await chain(1000000))


asyncio.run(main())
