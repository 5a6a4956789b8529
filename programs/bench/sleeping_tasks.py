# bench: sleeping_tasks — twin of sleeping_tasks.lab: 1,000,000 tasks created
# with asyncio.create_task, each awaiting asyncio.sleep(1), then gathered.
import asyncio


async def sleeper(i):
    await asyncio.sleep(1)
    return 1


async def main(n):
    ts = []
    for i in range(n):
        ts.append(asyncio.create_task(sleeper(i)))
    rs = await asyncio.gather(*ts)
    s = 0
    for r in rs:
        s = s + r
    print(len(rs), s)


asyncio.run(main(1000000))
