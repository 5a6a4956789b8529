# bench: sleep0_steps — twin of sleep0_steps.lab: one coroutine awaiting
# asyncio.sleep(0) 1,000,000 times (each yields one event-loop iteration).
import asyncio


async def steps(n):
    k = 0
    for i in range(n):
        await asyncio.sleep(0)
        k = k + 1
    return k


async def main():
    print(await steps(1000000))


asyncio.run(main())
