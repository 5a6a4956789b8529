# bench: timers — twin of timers.lab: 100,000 loop.call_later((i % 100) ms,
# tick) in the main coroutine, then asyncio.sleep(100 ms), then the count.
# (set_timeout is call_later under looplab's asyncio policy; 0 stays 0.)
import asyncio

count = 0


def tick():
    global count
    count = count + 1


async def main():
    loop = asyncio.get_running_loop()
    for i in range(100000):
        loop.call_later((i % 100) / 1000, tick)
    await asyncio.sleep(0.1)
    print(count)


asyncio.run(main())
