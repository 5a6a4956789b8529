# bench: promise_chain — twin of promise_chain.lab.
# Honest asyncio equivalent of `p = p.then(f)`, as looplab's asyncio policy
# defines it: a done-callback on p that resolves a new future with f's
# result. Each reaction is scheduled with call_soon when its future is set, so
# the 1,000,000 reactions run one per event-loop iteration, as in CPython.
import asyncio


def then(fut, f):
    out = fut.get_loop().create_future()

    def reaction(done):
        out.set_result(f(done.result()))

    fut.add_done_callback(reaction)
    return out


async def chain(n):
    p = asyncio.get_running_loop().create_future()
    p.set_result(0)
    for i in range(n):
        p = then(p, lambda v: v + 1)
    return await p


async def main():
    print(await chain(1000000))


asyncio.run(main())
