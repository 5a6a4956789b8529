import asyncio

async def player(name):
    for i in range(3):
        print(name, i)
        await asyncio.sleep(0)

async def main():
    await asyncio.gather(player("ping"), player("pong"))

asyncio.run(main())
