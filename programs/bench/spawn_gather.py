# bench: spawn_gather — twin of spawn_gather.lab: 100,000 asyncio.create_task
# calls, then asyncio.gather of all the tasks.
import asyncio


async def job(i):
    return i * 2


async def main(n):
    ts = []
    for i in range(n):
        ts.append(asyncio.create_task(job(i)))
    rs = await asyncio.gather(*ts)
    s = 0
    for r in rs:
        s = s + r
    print(len(rs), s)


asyncio.run(main(100000))
